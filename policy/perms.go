package policy

import (
	"slices"
	"strings"
)

// Perm is a set of permissions, a bit field.
type Perm uint64

// The permissions. Unknown bits are rejected wherever a Perm is decoded.
const (
	PermRead           Perm = 1 << iota // receive the channel's keys (be a reader)
	PermPost                            // post envelopes to the channel
	PermInvite                          // sign invites
	PermModerate                        // tombstone other members' envelopes
	PermBan                             // ban and unban outranked identities
	PermManageChannels                  // create, update and override channels
	PermManageRoles                     // define, update, delete, grant and revoke outranked roles
	PermManageStorage                   // grant and revoke storage nodes
	PermManageServer                    // change the server policy
	permEnd
	PermAll = permEnd - 1
)

var permNames = []string{"read", "post", "invite", "moderate", "ban", "manage_channels", "manage_roles", "manage_storage", "manage_server"}

// Has reports whether p contains every permission of q.
func (p Perm) Has(q Perm) bool { return p&q == q }

// String lists the permission names joined by "|".
func (p Perm) String() string {
	var names []string
	for i, n := range permNames {
		if p&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if p&^PermAll != 0 {
		names = append(names, "unknown")
	}
	return strings.Join(names, "|")
}

// ParsePerm parses permission names separated by "|" or ",", as String
// writes them; "all" names every permission and "" none.
func ParsePerm(s string) (Perm, error) {
	var p Perm
	for _, n := range strings.FieldsFunc(s, func(r rune) bool { return r == '|' || r == ',' }) {
		n = strings.TrimSpace(n)
		if n == "all" {
			p |= PermAll
			continue
		}
		i := slices.Index(permNames, n)
		if i < 0 {
			return 0, errf(CodeMalformed, "unknown permission %q (known: %s, all)", n, strings.Join(permNames, ", "))
		}
		p |= 1 << i
	}
	return p, nil
}

// ParseDurability parses a durability mode's name.
func ParseDurability(s string) (Durability, error) {
	for d := Strict; d <= Guaranteed; d++ {
		if d.String() == s {
			return d, nil
		}
	}
	return 0, errf(CodeMalformed, "durability %q is not strict, replicated or guaranteed", s)
}

func (p Perm) validate() error {
	if p&^PermAll != 0 {
		return errf(CodeMalformed, "unknown permission bits %#x", uint64(p&^PermAll))
	}
	return nil
}

// Durability is a channel's storage policy: who may hold its ciphertext.
type Durability uint8

// Durability modes (PROTOCOL.md "Durability").
const (
	// Strict: only nodes granted this very channel, or nodes of identities
	// that may read it, may store its ciphertext.
	Strict Durability = 1
	// Replicated: any member's node and any node granted the server may store.
	Replicated Durability = 2
	// Guaranteed: as Replicated, and a message counts as sent only once an
	// eligible hub has returned a signed storage receipt for it.
	Guaranteed Durability = 3
)

func (d Durability) String() string {
	switch d {
	case Strict:
		return "strict"
	case Replicated:
		return "replicated"
	case Guaranteed:
		return "guaranteed"
	}
	return "invalid"
}

func (d Durability) validate() error {
	if d < Strict || d > Guaranteed {
		return errf(CodeMalformed, "durability %d is not strict(1), replicated(2) or guaranteed(3)", d)
	}
	return nil
}
