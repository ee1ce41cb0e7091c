// Package relay is the relay node's TURN and STUN server (RFC 5766, RFC 6062
// TCP relaying, RFC 8489), built on pion/turn and safe by default for the
// public internet: every IANA special-purpose address is a denied peer
// unless explicitly allowed, allocations are bounded per user, in total and
// in bandwidth, lifetimes are capped, and authentication failures are not
// answered faster than a per-source rate (no reflection amplifier).
//
// Credentials are static long-term users and the TURN REST API's ephemeral
// credentials compatible with coturn's static-auth-secret (several secrets
// at once, for rotation). A relay with no credentials does not start.
//
// The relay moves packets; it never stores or reads them.
package relay
