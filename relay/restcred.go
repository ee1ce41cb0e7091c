package relay

import (
	"time"

	"github.com/guildhall/guildhall/relay/turnrest"
)

// RESTCredential returns a TURN REST API credential that a relay sharing
// secret accepts until expiry, in the form of coturn's static-auth-secret:
// username "expiry:user" (expiry in Unix seconds; just "expiry" when user
// is empty), password base64(HMAC-SHA1(secret, username)). It is
// turnrest.Issue, which the hub and operators' tools issue with; the relay
// checks credentials with the same computation (restPassword).
func RESTCredential(secret, user string, expiry time.Time) (username, password string, err error) {
	return turnrest.Issue(secret, user, expiry)
}
