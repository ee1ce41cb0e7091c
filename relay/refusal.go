package relay

import (
	"encoding/binary"
	"net"
	"sync"

	"github.com/pion/stun/v3"
)

// pion answers 400 (Bad Request) when the AuthHandler refuses a request's
// user (unknown user, expired REST credential, a source over its failure
// rate) and when its MESSAGE-INTEGRITY does not check out (wrong
// password). coturn answers 401 with REALM and a NONCE, which tells a
// client to retry with other credentials; so does the relay. pion handles
// the requests of one client transport address one at a time (one read
// loop per UDP listening address and per stream), so the request pion is
// authenticating for a source is the last one read from it: its
// transaction ID and nonce are noted as it is read, marked when its
// authentication fails, and pion's 400 with that transaction ID is
// answered 401 with the request's own nonce, which pion has just found
// valid (it checks the nonce before the credentials). The failure is
// charged to the source as before; the 401 counts against the source's
// challenge rate on UDP like any other.

// authRequest is a request read with credentials, not yet answered.
type authRequest struct {
	id    [stun.TransactionIDSize]byte
	nonce string
}

type refusals struct {
	mu      sync.Mutex
	last    map[string]authRequest                  // client transport address -> its latest request with credentials; guarded by mu
	refused map[[stun.TransactionIDSize]byte]string // refused requests -> their nonce; guarded by mu
}

// maxRefusals bounds both maps: a flood of sources only costs 400s
// answered as pion answers them.
const maxRefusals = 1 << 16

func addrKey(a net.Addr) string { return a.Network() + "/" + a.String() }

// read notes a request with MESSAGE-INTEGRITY and NONCE read from src. Only
// requests are decoded: indications and ChannelData (the data path) are
// not.
func (r *refusals) read(src net.Addr, b []byte) {
	if len(b) < 20 || b[0]&0xc0 != 0 || binary.BigEndian.Uint16(b)&0x0110 != 0 || !stun.IsMessage(b) {
		return
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	var nonce stun.Nonce
	if m.Decode() != nil || !m.Contains(stun.AttrMessageIntegrity) || nonce.GetFrom(m) != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil || len(r.last) >= maxRefusals {
		r.last = map[string]authRequest{}
	}
	r.last[addrKey(src)] = authRequest{id: m.TransactionID, nonce: nonce.String()}
}

// refuse marks the request being authenticated for src as refused.
func (r *refusals) refuse(src net.Addr) {
	if src == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	req, ok := r.last[addrKey(src)]
	if !ok {
		return
	}
	delete(r.last, addrKey(src))
	if r.refused == nil || len(r.refused) >= maxRefusals {
		r.refused = map[[stun.TransactionIDSize]byte]string{}
	}
	r.refused[req.id] = req.nonce
}

// take returns the nonce of the refused request id, once.
func (r *refusals) take(id [stun.TransactionIDSize]byte) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	nonce, ok := r.refused[id]
	delete(r.refused, id)
	return nonce, ok
}

// forget drops what was noted for a client transport address (its stream
// closed).
func (r *refusals) forget(src net.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.last, addrKey(src))
}

// unauthorized returns the 401 to send instead of b when b is pion's 400
// to a request whose credentials were refused, or nil.
func (s *Server) unauthorized(b []byte) []byte {
	if len(b) < 20 || b[0]&0xc0 != 0 || binary.BigEndian.Uint16(b)&0x0110 != 0x0110 {
		return nil
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	var code stun.ErrorCodeAttribute
	if m.Decode() != nil || code.GetFrom(m) != nil || code.Code != stun.CodeBadRequest {
		return nil
	}
	nonce, ok := s.refusals.take(m.TransactionID)
	if !ok {
		return nil
	}
	setters := []stun.Setter{stun.NewTransactionIDSetter(m.TransactionID), m.Type,
		stun.ErrorCodeAttribute{Code: stun.CodeUnauthorized, Reason: []byte("Unauthorized")},
		stun.NewRealm(s.creds.Load().realm), stun.NewNonce(nonce)}
	if m.Contains(stun.AttrFingerprint) {
		setters = append(setters, stun.Fingerprint)
	}
	out, err := stun.Build(setters...)
	if err != nil {
		return nil
	}
	return out.Raw
}
