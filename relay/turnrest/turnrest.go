// Package turnrest issues TURN REST API credentials in the form of coturn's
// static-auth-secret ("A REST API For Access To TURN Services",
// draft-uberti-behave-turn-rest): username "expiry:user", password
// base64(HMAC-SHA1(secret, username)). The relay accepts what it issues;
// the hub's credential endpoint and the guild tool issue with it.
//
// It uses the standard library only, so that a hub can issue credentials
// without linking the TURN server, and it never reads a secret itself:
// callers read secret files (with their permission checks) and pass the
// secret in.
package turnrest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Errors of issuing and of checking TURN URIs.
var (
	// ErrNoSecret refuses to issue without a shared secret.
	ErrNoSecret = errors.New("turnrest: a TURN secret is required")
	// ErrBadUser refuses a user part the username could not carry.
	ErrBadUser = errors.New("turnrest: a TURN user name may not contain ':'")
	// ErrBadURL refuses what is not a turn: or turns: URI (RFC 7065).
	ErrBadURL = errors.New("turnrest: not a TURN URI")
)

// Issue returns a credential that a relay sharing secret accepts until
// expiry: username "expiry:user" (expiry in Unix seconds; just "expiry"
// when user is empty) and its Password. A relay counts its per-user
// quotas by the user part.
func Issue(secret, user string, expiry time.Time) (username, password string, err error) {
	if secret == "" {
		return "", "", ErrNoSecret
	}
	if strings.Contains(user, ":") {
		return "", "", ErrBadUser
	}
	username = strconv.FormatInt(expiry.Unix(), 10)
	if user != "" {
		username += ":" + user
	}
	return username, Password(secret, username), nil
}

// Password is the TURN REST API password of a username under a secret:
// base64(HMAC-SHA1(secret, username)), as coturn computes it.
func Password(secret, username string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// CheckURL checks that u is a TURN URI as RFC 7065 writes them and
// browsers take them: "turn:" or "turns:", a host (a name, an IPv4
// address or a bracketed IPv6 one), an optional port 1..65535, and an
// optional "?transport=udp" or "?transport=tcp". Errors wrap ErrBadURL.
func CheckURL(u string) error {
	bad := func(why string) error { return fmt.Errorf("%w: %q: %s", ErrBadURL, u, why) }
	scheme, rest, ok := strings.Cut(u, ":")
	if !ok || (scheme != "turn" && scheme != "turns") {
		return bad("want a turn: or turns: URI, e.g. turn:relay.example.org:3478?transport=udp")
	}
	hostport, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery && query != "transport=udp" && query != "transport=tcp" {
		return bad("the only query is transport=udp or transport=tcp")
	}
	if strings.HasPrefix(hostport, "//") || strings.ContainsAny(hostport, "@/#") {
		return bad("a TURN URI has no //, user, path or fragment (turn:HOST[:PORT])")
	}
	host := hostport
	if h, port, err := net.SplitHostPort(hostport); err == nil {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return bad("port must be 1..65535")
		}
		host = h
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1]
	} else if strings.Contains(hostport, ":") {
		return bad("an IPv6 address goes in brackets, a port after one colon")
	}
	if host == "" {
		return bad("no host")
	}
	if net.ParseIP(host) == nil && !hostName(host) {
		return bad("the host is neither an IP address nor a host name")
	}
	return nil
}

// hostName reports whether s is a DNS host name: dot-separated labels of
// letters, digits and inner hyphens.
func hostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
