package client

import (
	"strings"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/policy"
)

// A profile set through one channel names its member in the whole server,
// and two members showing the same name are told apart by their keys.
func TestNamesCannotImpersonate(t *testing.T) {
	h := clienttest.StartHub(t, "sqlite")
	alice := newClient(t, "alice")
	server := must[policy.ID](t)(alice.CreateServer(ctx, "club", []string{h.URL}, ServerOptions{}))
	lounge := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "lounge", Durability: policy.Replicated}))
	games := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "games", Durability: policy.Replicated}))
	bob, carol := newClient(t, "bob"), newClient(t, "carol")
	for _, c := range []*Client{bob, carol} {
		must[policy.ID](t)(c.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))))
	}
	must[*Sent](t)(alice.SetProfile(ctx, server, lounge, Profile{Name: "Alice"}))
	must[*Sent](t)(bob.SetProfile(ctx, server, games, Profile{Name: " alice "}))
	must[*Sent](t)(carol.SetProfile(ctx, server, lounge, Profile{Name: "Carol"}))
	for _, ch := range []policy.ID{lounge, games} {
		readable(t, carol, server, ch)
	}
	names := must[map[policy.PublicKey]string](t)(carol.Names(ctx, server))
	aliceID, _ := alice.Identity()
	bobID, _ := bob.Identity()
	carolID, _ := carol.Identity()
	an, bn := names[aliceID.Public()], names[bobID.Public()]
	if an == bn || !strings.HasPrefix(an, "Alice (") || !strings.Contains(an, Fingerprint(aliceID.Public())) || !strings.Contains(bn, Fingerprint(bobID.Public())) {
		t.Fatalf("alice shows as %q and bob, who took her name, as %q", an, bn)
	}
	if names[carolID.Public()] != "Carol" {
		t.Fatalf("carol, whose name is hers alone, shows as %q", names[carolID.Public()])
	}
}
