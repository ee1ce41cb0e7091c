package relay

import (
	"encoding/binary"
	"net"
	"time"

	"github.com/pion/stun/v3"
)

// This file holds what the relay does to STUN messages on their way to and
// from pion, where pion's own answer would be wrong:
//
//   - An Allocate asking for an address family the relay does not serve
//     (REQUESTED-ADDRESS-FAMILY other than its external address's) is
//     answered 440, as RFC 6156 §4.2 says; pion tries, fails to bind and
//     answers 508.
//   - A LIFETIME below the default is raised to the default, and one at or
//     above the maximum lowered to it (RFC 8656 §7.2, §7.3): pion honours
//     any request below an hour and gives the default to longer ones. The
//     request is re-signed with the key it was signed with, after the
//     relay has checked that signature itself; 0 in a Refresh (delete)
//     stays.
//   - A ChannelBind refused for its peer is answered 401 by pion, without
//     a nonce, which clients take for a challenge and the challenge limiter
//     throttles; it is answered 403 (RFC 8656 §11.2).
//   - A request whose credentials are refused (unknown user, expired REST
//     credential, wrong password) is answered 400 by pion; it is answered
//     401 with REALM and NONCE, as coturn does (refusal.go).

var (
	allocateRequest = stun.NewType(stun.MethodAllocate, stun.ClassRequest).Value()
	refreshRequest  = stun.NewType(stun.MethodRefresh, stun.ClassRequest).Value()
	channelBindErr  = stun.NewType(stun.MethodChannelBind, stun.ClassErrorResponse).Value()
)

// inspect looks at one message from a client before pion reads it. It may
// rewrite m in place (same length) or return a reply to send instead of
// passing m on.
func (s *Server) inspect(m []byte, _ net.Addr, _ bool) []byte {
	if len(m) < 20 || m[0]&0xc0 != 0 {
		return nil
	}
	typ := binary.BigEndian.Uint16(m)
	if typ != allocateRequest && typ != refreshRequest {
		return nil
	}
	msg := &stun.Message{Raw: append([]byte(nil), m...)}
	if msg.Decode() != nil {
		return nil
	}
	if typ == allocateRequest {
		if reply := s.checkFamily(msg); reply != nil {
			return reply
		}
	}
	if fixed := s.fixLifetime(msg, typ == refreshRequest); len(fixed) == len(m) {
		copy(m, fixed)
	}
	return nil
}

// checkFamily answers 440 to an Allocate for a family the relay's external
// address is not of.
func (s *Server) checkFamily(msg *stun.Message) []byte {
	v, err := msg.Get(stun.AttrRequestedAddressFamily)
	if err != nil || len(v) != 4 {
		return nil // absent: the default (the listener's family); malformed: pion answers 400
	}
	v4 := s.cfg.RelayIP.To4() != nil
	if (v[0] == 0x01 && v4) || (v[0] == 0x02 && !v4) || (v[0] != 0x01 && v[0] != 0x02) {
		return nil // served, or a value pion refuses with 440 itself
	}
	s.metrics.familyRefused.Inc()
	reply, err := stun.Build(stun.NewTransactionIDSetter(msg.TransactionID), stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse),
		stun.ErrorCodeAttribute{Code: stun.CodeAddrFamilyNotSupported, Reason: []byte("Address Family not Supported")}, stun.Fingerprint)
	if err != nil {
		return nil
	}
	return reply.Raw
}

// pionMaxLifetime is the longest LIFETIME pion honours: it takes requests
// strictly below an hour.
const pionMaxLifetime = MaxAllocationLifetime - time.Second

// fixLifetime returns msg re-signed with the lifetime RFC 8656 gives it,
// or nil when it needs no change or its signature does not check out (pion
// then refuses it).
func (s *Server) fixLifetime(msg *stun.Message, refresh bool) []byte {
	v, err := msg.Get(stun.AttrLifetime)
	if err != nil || len(v) != 4 || msg.Contains(stun.AttrMessageIntegritySHA256) {
		return nil
	}
	asked := time.Duration(binary.BigEndian.Uint32(v)) * time.Second
	want := max(asked, s.cfg.Limits.AllocationLifetime)
	if refresh && asked == 0 {
		want = 0
	}
	want = min(want, pionMaxLifetime)
	if want == asked {
		return nil
	}
	key := s.requestKey(msg)
	if key == nil {
		return nil
	}
	setters := []stun.Setter{stun.NewTransactionIDSetter(msg.TransactionID), msg.Type}
	for _, a := range msg.Attributes {
		if a.Type == stun.AttrMessageIntegrity {
			break
		}
		if a.Type == stun.AttrLifetime {
			a.Value = binary.BigEndian.AppendUint32(nil, uint32(want/time.Second))
		}
		setters = append(setters, stun.RawAttribute{Type: a.Type, Value: a.Value})
	}
	setters = append(setters, key)
	if msg.Contains(stun.AttrFingerprint) {
		setters = append(setters, stun.Fingerprint)
	}
	out, err := stun.Build(setters...)
	if err != nil {
		return nil
	}
	s.metrics.lifetimesAdjusted.Inc()
	return out.Raw
}

// requestKey returns the long-term key msg's MESSAGE-INTEGRITY checks
// against, or nil.
func (s *Server) requestKey(msg *stun.Message) stun.MessageIntegrity {
	if !msg.Contains(stun.AttrMessageIntegrity) {
		return nil
	}
	var user stun.Username
	var realm stun.Realm
	if user.GetFrom(msg) != nil || realm.GetFrom(msg) != nil {
		return nil
	}
	creds := s.creds.Load()
	if realm.String() != creds.realm {
		return nil
	}
	var keys []stun.MessageIntegrity
	if k, ok := creds.users[user.String()]; ok {
		keys = append(keys, k)
	} else if _, _, ok := restExpiry(user.String()); ok {
		for _, sec := range creds.secrets {
			keys = append(keys, stun.NewLongTermIntegrity(user.String(), creds.realm, restPassword(sec, user.String())))
		}
	}
	for _, k := range keys {
		if k.Check(msg) == nil {
			return k
		}
	}
	return nil
}

// rewriteResponse returns the answer to send instead of b, or nil: pion's
// 400 to a request whose credentials were refused becomes 401 with REALM
// and NONCE (Server.unauthorized); a ChannelBind refused 401 without a
// nonce (pion's answer to a denied peer) becomes 403.
func (s *Server) rewriteResponse(b []byte) []byte {
	if r := s.unauthorized(b); r != nil {
		return r
	}
	if len(b) < 20 || b[0]&0xc0 != 0 || binary.BigEndian.Uint16(b) != channelBindErr {
		return nil
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	var code stun.ErrorCodeAttribute
	if m.Decode() != nil || code.GetFrom(m) != nil || code.Code != stun.CodeUnauthorized || m.Contains(stun.AttrNonce) {
		return nil
	}
	setters := []stun.Setter{stun.NewTransactionIDSetter(m.TransactionID), m.Type,
		stun.ErrorCodeAttribute{Code: stun.CodeForbidden, Reason: []byte("Forbidden")}}
	if m.Contains(stun.AttrFingerprint) {
		setters = append(setters, stun.Fingerprint)
	}
	out, err := stun.Build(setters...)
	if err != nil {
		return nil
	}
	return out.Raw
}

// isChallenge reports whether b is a STUN error response that pion sends
// to unauthenticated requests, with a fresh nonce: 401, or 438 (stale or
// bogus nonce). Both are throttled per source on UDP.
func isChallenge(b []byte) bool {
	if len(b) < 20 || !stun.IsMessage(b) {
		return false
	}
	if typ := binary.BigEndian.Uint16(b); typ&0x0110 != 0x0110 { // class bits: error response
		return false
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if m.Decode() != nil {
		return false
	}
	var code stun.ErrorCodeAttribute
	return code.GetFrom(m) == nil && (code.Code == stun.CodeUnauthorized || code.Code == stun.CodeStaleNonce)
}
