package relay

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/stun/v3"
	"github.com/pion/turn/v5"
)

// credentials are the users and REST secrets in force; replaced whole on
// reload.
type credentials struct {
	realm   string
	users   map[string][]byte // username -> long-term key MD5(user:realm:password)
	secrets []string          // TURN REST API secrets, newest first
}

// restPassword is the TURN REST API password for a username under a
// secret: base64(HMAC-SHA1(secret, username)), as coturn computes it.
func restPassword(secret, username string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// restExpiry parses a REST username "expiry[:user]" (expiry in Unix
// seconds); ok is false for a name that is not of that form.
func restExpiry(username string) (expiry time.Time, user string, ok bool) {
	ts, user, _ := strings.Cut(username, ":")
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, "", false
	}
	if user == "" {
		user = ts
	}
	return time.Unix(n, 0), user, true
}

// keyChooser remembers, for REST usernames, which secret made the message
// integrity of the latest request from a source. pion's AuthHandler sees
// the username but not the message, so with several secrets (rotation) the
// relay checks the integrity itself as the request is read, and the
// handler, called right after for the same request, takes that key.
type keyChooser struct {
	mu   sync.Mutex
	keys map[string][]byte // source address + "\x00" + username -> key; guarded by mu
}

const maxChosen = 1 << 16

// observe inspects a request as it is read. It costs one HMAC per secret,
// only for messages carrying a REST username and MESSAGE-INTEGRITY.
func (k *keyChooser) observe(creds *credentials, src string, raw []byte) {
	if len(creds.secrets) < 2 || !stun.IsMessage(raw) {
		return // with one secret there is nothing to choose
	}
	m := &stun.Message{Raw: append([]byte(nil), raw...)}
	if m.Decode() != nil || !m.Contains(stun.AttrMessageIntegrity) {
		return
	}
	var user stun.Username
	if user.GetFrom(m) != nil {
		return
	}
	if _, _, ok := restExpiry(user.String()); !ok {
		return
	}
	for _, s := range creds.secrets {
		key := stun.NewLongTermIntegrity(user.String(), creds.realm, restPassword(s, user.String()))
		if key.Check(m) == nil {
			k.mu.Lock()
			if len(k.keys) >= maxChosen {
				clear(k.keys) // bounded: a flood of sources only costs re-checks
			}
			k.keys[src+"\x00"+user.String()] = key
			k.mu.Unlock()
			return
		}
	}
}

func (k *keyChooser) chosen(src, username string) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	key := k.keys[src+"\x00"+username]
	delete(k.keys, src+"\x00"+username)
	return key
}

// authenticate is the server's AuthHandler: static users first, then REST
// credentials that have not expired. The user ID (for quotas) of a REST
// credential is its user part. A refused request is answered 401 (see
// refusals), not pion's 400.
//
// A source (IPv6: a /64) that failed authentication over the per-source
// rate (Limits.AuthFailureRate) is refused unchecked until the rate
// allows another try: online guessing of static passwords gets a few
// tries a minute. Failures are charged here (unknown user, expired
// credential) and in onAuth (wrong password, found by pion after this).
func (s *Server) authenticate(ra *turn.RequestAttributes) (string, []byte, bool) {
	src := sourceOf(ra.SrcAddr)
	if s.authFails.Available(src) < 1 {
		s.metrics.authThrottled.Inc()
		s.refusals.refuse(ra.SrcAddr)
		return "", nil, false
	}
	user, key, ok := s.lookupKey(ra)
	if !ok {
		s.metrics.authFailures.Inc()
		s.authFails.Charge(src, 1)
		s.refusals.refuse(ra.SrcAddr)
	}
	if ok && ra.SrcAddr != nil && ra.SrcAddr.Network() == "tcp" {
		s.streamKeys.Store(ra.SrcAddr.String(), key)
	}
	return user, key, ok
}

// streamKey returns the key a TCP client's requests were authenticated with.
func (s *Server) streamKey(addr string) stun.MessageIntegrity {
	if k, ok := s.streamKeys.Load(addr); ok {
		return stun.MessageIntegrity(k.([]byte))
	}
	return nil
}

func (s *Server) lookupKey(ra *turn.RequestAttributes) (string, []byte, bool) {
	creds := s.creds.Load()
	if ra.Realm != creds.realm {
		return "", nil, false
	}
	if key, ok := creds.users[ra.Username]; ok {
		return ra.Username, key, true
	}
	exp, user, ok := restExpiry(ra.Username)
	if !ok || len(creds.secrets) == 0 || !exp.After(s.now()) {
		return "", nil, false
	}
	if key := s.chooser.chosen(ra.SrcAddr.String(), ra.Username); key != nil {
		return user, key, true
	}
	return user, stun.NewLongTermIntegrity(ra.Username, creds.realm, restPassword(creds.secrets[0], ra.Username)), true
}
