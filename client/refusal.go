package client

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/guildhall/guildhall/policy"
)

// ErrInviteDamaged is an invite token that does not decode: cut short or
// altered on its way.
var ErrInviteDamaged = errors.New("client: this invite is incomplete or damaged (copy it whole)")

// damagedInvite is an invite token that starts as one but does not
// decode: it reads as ErrInviteDamaged, and unwraps to policy's error.
type damagedInvite struct{ err error }

func (d damagedInvite) Error() string   { return ErrInviteDamaged.Error() }
func (d damagedInvite) Unwrap() []error { return []error{ErrInviteDamaged, d.err} }

// plainRefusals say in plain words what a hub's refusal means for the
// person acting.
var plainRefusals = map[string]string{
	string(policy.CodeBanned):          "you are banned from this server",
	string(policy.CodeNotMember):       "you are not a member of this server",
	string(policy.CodeInviteExhausted): "this invite is used up: it admitted all the joins it allowed (ask for a new one)",
	string(policy.CodeInviteExpired):   "this invite has expired (ask for a new one)",
	string(policy.CodeInviteRevoked):   "this invite was revoked (ask for a new one)",
	string(policy.CodeInvalidInvite):   "this invite is not valid for this server",
	string(policy.CodeForbidden):       "you are not allowed to do this here",
}

// Refusal is a hub's refusal explained: what it means for the person, then
// the hub's code and message. errors.As finds the HubError inside.
type Refusal struct {
	Plain string
	Err   *HubError
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("%s (the hub said %s: %s)", r.Plain, r.Err.Code, hubMessage(r.Err))
}

func (r *Refusal) Unwrap() error { return r.Err }

// hubMessage is the hub's message without the code it repeats.
func hubMessage(he *HubError) string {
	return strings.TrimPrefix(he.Message, "policy: "+he.Code+": ")
}

// explain wraps a hub's refusal with a known meaning in a Refusal; other
// errors are returned as they are.
func explain(err error) error {
	var he *HubError
	var r *Refusal
	if err == nil || errors.As(err, &r) {
		return err
	}
	if !errors.As(err, &he) {
		if p, ok := plainRefusals[string(policy.CodeOf(err))]; ok {
			return fmt.Errorf("%s: %w", p, err) // decided here, from the verified state
		}
		return err
	}
	if p, ok := plainRefusals[he.Code]; ok {
		return &Refusal{Plain: p, Err: he}
	}
	return err
}

// HubsError is what every hub of a server answered when none did what was
// asked. When each of them refused, it reads as their refusals; when some
// could not be reached, it matches ErrNoHub as well.
type HubsError struct{ Errs []error }

// noHub returns ErrNoHub when no hub was asked, else a HubsError of what
// each said.
func noHub(errs []error) error {
	if len(errs) == 0 {
		return ErrNoHub
	}
	return &HubsError{Errs: errs}
}

func (e *HubsError) refused() bool {
	for _, err := range e.flat() {
		var he *HubError
		if !errors.As(err, &he) {
			return false
		}
	}
	return true
}

func (e *HubsError) Error() string {
	var parts []string
	for _, err := range e.flat() {
		p := explain(err).Error()
		var ue *url.Error
		if errors.As(err, &ue) { // the request's URL says nothing the hub's address does not
			p = "hub " + hubOf(ue.URL) + ": " + ue.Err.Error()
		}
		if !slices.Contains(parts, p) {
			parts = append(parts, p)
		}
	}
	switch {
	case e.refused() && len(parts) == 1:
		return parts[0]
	case e.refused():
		return "every hub refused: " + strings.Join(parts, "; ")
	}
	return "no hub answered: " + strings.Join(parts, "; ")
}

// flat is what each hub said, HubsErrors inside spread out.
func (e *HubsError) flat() []error {
	var out []error
	for _, err := range e.Errs {
		var inner *HubsError
		if errors.As(err, &inner) {
			out = append(out, inner.flat()...)
		} else {
			out = append(out, err)
		}
	}
	return out
}

func hubOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Scheme + "://" + u.Host
}

func (e *HubsError) Unwrap() []error { return e.Errs }

// Is makes a HubsError match ErrNoHub unless every hub refused.
func (e *HubsError) Is(target error) bool { return target == ErrNoHub && !e.refused() }
