package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/relay/turnrest"
	"github.com/guildhall/guildhall/wire"
)

// Bounds of TURN.TTL.
const (
	DefaultTURNTTL = time.Hour
	MinTURNTTL     = time.Minute
	// MaxTURNTTL: a relay checks the credential again on every refresh, so
	// a call outlives its credential only by the allocation's lifetime; a
	// day covers a long call without handing out near-permanent access.
	MaxTURNTTL = 24 * time.Hour
)

// TURN configures GET /v1/turn/credentials, which hands members TURN REST
// API credentials for the relays sharing Secret. Without a Secret the
// endpoint answers not_configured.
type TURN struct {
	// Secret is the relays' shared secret (their static-auth-secret);
	// the binary reads it from a private file.
	Secret string
	// URLs are the relays' turn: and turns: URIs (turnrest.CheckURL),
	// given to clients as they are.
	URLs []string
	// TTL is the credentials' lifetime; default DefaultTURNTTL, within
	// MinTURNTTL..MaxTURNTTL (the binary refuses others).
	TTL time.Duration
	// Now is the clock credentials expire by, the relays'; default
	// time.Now.
	Now func() time.Time
}

// errNotConfigured answers a feature this hub's operator did not set up.
var errNotConfigured = errors.New("not configured")

// turnCredentials issues a TURN REST credential to the session's identity:
// its user part is the identity key, so that a relay's per-user quotas
// count per member, whichever device asks. It needs a session; an invite
// or anonymity is refused. Credentials are never cached on the way.
func (a *API) turnCredentials(w http.ResponseWriter, r *http.Request) error {
	t := a.cfg.TURN
	if t.Secret == "" {
		return fmt.Errorf("%w: this hub issues no TURN credentials (its operator has not set turn.secret_file)", errNotConfigured)
	}
	rd, err := a.caller(r)
	if err != nil {
		return err
	}
	if rd.Identity.IsZero() {
		return fmt.Errorf("%w: TURN credentials need a session (POST /v1/auth/session), sent as Authorization: Bearer TOKEN", hub.ErrUnauthenticated)
	}
	ttl, now := t.TTL, t.Now
	if ttl <= 0 {
		ttl = DefaultTURNTTL
	}
	if now == nil {
		now = time.Now
	}
	exp := now().Add(ttl)
	user, pass, err := turnrest.Issue(t.Secret, rd.Identity.String(), exp)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return reply(w, r, 200, wire.TURNCredentials{URLs: t.URLs, Username: user, Credential: pass,
		TTL: int64(ttl / time.Second), Expires: exp.UnixMilli()})
}
