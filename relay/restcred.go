package relay

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// RESTCredential returns a TURN REST API credential that a relay sharing
// secret accepts until expiry, in the form of coturn's static-auth-secret:
// username "expiry:user" (expiry in Unix seconds; just "expiry" when user
// is empty), password base64(HMAC-SHA1(secret, username)). The relay
// checks credentials with the same computation (restPassword), and
// operators' tools issue them with this function.
func RESTCredential(secret, user string, expiry time.Time) (username, password string, err error) {
	if secret == "" {
		return "", "", errors.New("relay: a TURN secret is required")
	}
	if strings.Contains(user, ":") {
		return "", "", errors.New("relay: a TURN user name may not contain ':'")
	}
	username = strconv.FormatInt(expiry.Unix(), 10)
	if user != "" {
		username += ":" + user
	}
	return username, restPassword(secret, username), nil
}
