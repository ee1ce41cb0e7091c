package hub

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/guildhall/guildhall/policy"
)

// Authentication is stateless, so that every process holding the node key
// (replicas behind one load balancer) accepts what any of them issued:
// challenges and session tokens carry their expiry and a MAC under a key
// derived from the node key. Revocation is not the token's job: every read
// applies policy's read rule to the token's identity and device against the
// current state, so a ban or a device revocation takes effect at once.
//
// A challenge is answered once: each process remembers the challenges it
// accepted until they expire (at most maxSpent at a time, maxSpentBy of
// one identity), so a captured proof cannot be replayed to it. Processes do not share that memory; a
// proof replayed within the challenge's minute to another replica of the
// same hub would be accepted there once.
const (
	challengeTTL = 60_000              // ms a challenge may be answered
	challengeLen = 8 + 16 + 16         // expiry, random, MAC
	sessionLen   = 32 + 32 + 8 + 16    // identity, device, expiry, MAC
	sessionTTL   = 24 * 60 * 60 * 1000 // ms; capped by the device certificate
	macDomain    = "guildhall/v1/hub-session"
	maxSpent     = 1 << 18 // challenges remembered at once (about 20 MiB at most): 4,000 sessions a second
	maxSpentBy   = 64      // of them answered by one identity: a member cannot crowd out the others
)

// spentChallenges remembers answered challenges until they expire.
type spentChallenges struct {
	mu sync.Mutex
	m  map[[16]byte]spent       // guarded by mu; by a challenge's random part
	by map[policy.PublicKey]int // guarded by mu; how many of m each identity answered
}

type spent struct {
	expiry int64 // Unix ms
	by     policy.PublicKey
}

func newSpentChallenges() spentChallenges {
	return spentChallenges{m: map[[16]byte]spent{}, by: map[policy.PublicKey]int{}}
}

// spend marks a challenge answered by identity at now, or says why it
// cannot be: answered already (a replay), or too many outstanding.
func (sp *spentChallenges) spend(random [16]byte, by policy.PublicKey, expiry, now int64) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if _, ok := sp.m[random]; ok {
		return fmt.Errorf("%w: challenge already answered; ask for a new one", ErrUnauthenticated)
	}
	if len(sp.m) >= maxSpent || sp.by[by] >= maxSpentBy {
		for k, e := range sp.m {
			if e.expiry < now {
				delete(sp.m, k)
				if sp.by[e.by]--; sp.by[e.by] == 0 {
					delete(sp.by, e.by)
				}
			}
		}
	}
	switch {
	case sp.by[by] >= maxSpentBy:
		return fmt.Errorf("%w: %s opened %d sessions within a minute; retry later", ErrRateLimited, by, maxSpentBy)
	case len(sp.m) >= maxSpent:
		return fmt.Errorf("%w: too many sessions being opened; retry in a minute", ErrRateLimited)
	}
	sp.m[random] = spent{expiry: expiry, by: by}
	sp.by[by]++
	return nil
}

func (s *Service) mac(parts ...[]byte) []byte {
	m := hmac.New(sha256.New, s.macKey)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)[:16]
}

// Challenge returns a fresh challenge and when it expires (Unix ms).
func (s *Service) Challenge() ([]byte, int64) {
	exp := s.now() + challengeTTL
	c := make([]byte, 0, challengeLen)
	c = binary.BigEndian.AppendUint64(c, uint64(exp))
	c = append(c, make([]byte, 16)...)
	rand.Read(c[8:24])
	return append(c, s.mac([]byte("challenge"), c)...), exp
}

// Session checks a signed auth proof answering one of this hub's
// challenges, once (a challenge already answered is refused), and returns a bearer token for its identity and device, with
// its expiry (Unix ms).
func (s *Service) Session(proof []byte) (token string, r Caller, expires int64, err error) {
	a, err := policy.ParseAuth(proof)
	if err != nil {
		return "", Caller{}, 0, err
	}
	now := s.now()
	c := a.Challenge
	switch {
	case a.Hub != s.node.Identity:
		return "", Caller{}, 0, fmt.Errorf("%w: proof is for hub %s, this is %s", ErrUnauthenticated, a.Hub, s.node.Identity)
	case len(c) != challengeLen || !hmac.Equal(c[24:], s.mac([]byte("challenge"), c[:24])):
		return "", Caller{}, 0, fmt.Errorf("%w: not a challenge of this hub", ErrUnauthenticated)
	case int64(binary.BigEndian.Uint64(c)) < now:
		return "", Caller{}, 0, fmt.Errorf("%w: challenge expired", ErrUnauthenticated)
	}
	if err := policy.CheckFresh(a.Time, now); err != nil {
		return "", Caller{}, 0, err
	}
	if err := s.spent.spend([16]byte(c[8:24]), a.Author, int64(binary.BigEndian.Uint64(c)), now); err != nil {
		s.metrics.replays.Inc()
		return "", Caller{}, 0, err
	}
	expires = min(now+sessionTTL, a.DeviceCert().Expires)
	r = Caller{Identity: a.Author, Device: a.Device()}
	t := make([]byte, 0, sessionLen)
	t = append(t, r.Identity[:]...)
	t = append(t, r.Device[:]...)
	t = binary.BigEndian.AppendUint64(t, uint64(expires))
	t = append(t, s.mac([]byte("session"), t)...)
	return base64.RawURLEncoding.EncodeToString(t), r, expires, nil
}

// Authenticate returns the reader a session token was issued to.
func (s *Service) Authenticate(token string) (Caller, error) {
	t, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(t) != sessionLen || !hmac.Equal(t[72:], s.mac([]byte("session"), t[:72])) {
		return Caller{}, fmt.Errorf("%w: invalid session token", ErrUnauthenticated)
	}
	if int64(binary.BigEndian.Uint64(t[64:72])) < s.now() {
		return Caller{}, fmt.Errorf("%w: session expired", ErrUnauthenticated)
	}
	var r Caller
	copy(r.Identity[:], t[:32])
	copy(r.Device[:], t[32:64])
	return r, nil
}
