package client

import (
	"fmt"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/policy"
)

// channelIDs reads a channel's envelope IDs from one hub alone.
func channelIDs(t *testing.T, c *Client, url string, server, channel policy.ID) (map[policy.ID]bool, error) {
	t.Helper()
	h := c.hub(url)
	d := must[*Device](t)(c.Device())
	token, err := h.Login(ctx, d)
	if err != nil {
		return nil, err
	}
	out := map[policy.ID]bool{}
	for after := uint64(0); ; {
		page, err := h.Read(ctx, token, server, channel, after, 500)
		if err != nil {
			return nil, err
		}
		for _, e := range page.Envelopes {
			out[e.ID] = true
		}
		after = page.Next
		if !page.More {
			return out, nil
		}
	}
}

// waitSameIDs waits until hub url serves every envelope of the channel
// that want serves; a failure names the envelopes missing.
func waitSameIDs(t *testing.T, c *Client, want, url string, server, channel policy.ID, limit time.Duration) {
	t.Helper()
	ref := must[map[policy.ID]bool](t)(channelIDs(t, c, want, server, channel))
	deadline := time.Now().Add(limit)
	for {
		got, err := channelIDs(t, c, url, server, channel)
		var missing []policy.ID
		for id := range ref {
			if !got[id] {
				missing = append(missing, id)
			}
		}
		if err == nil && len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the hub at %s lacks %d of the %d envelopes of %s (first %v; read error %v)", limit, url, len(missing), len(ref), want, missing[:min(5, len(missing))], err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func p2pHub(t *testing.T, admission, extra string, peers ...string) *clienttest.Hub {
	h := clienttest.NewHub(t, "sqlite")
	if admission != "" {
		h.Admission = admission
	}
	h.Extra = extra + "p2p:\n  enabled: true\n  listen: [/ip4/127.0.0.1/tcp/0]\n  interval: 1s\n"
	if len(peers) > 0 {
		h.Extra += fmt.Sprintf("  peers: [%s]\n", peers[0])
	}
	return h
}

// A member joins through her home node as well as the invite's hub: the
// client brings the home node the state log with the join, the node admits
// the server (its owner acts in it) and takes the history from the
// community hub.
func TestJoinersHomeNodeHostsTheServer(t *testing.T) {
	community := p2pHub(t, "", "")
	community.Start()
	alice := newClient(t, "alice")
	server := must[policy.ID](t)(alice.CreateServer(ctx, "club", []string{community.URL}, ServerOptions{}))
	general := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated}))
	for i := range 5 {
		must[*Sent](t)(alice.Send(ctx, server, general, fmt.Sprint("before bob ", i)))
	}
	bob := newClient(t, "bob")
	home := p2pHub(t, "", "", community.P2P)
	req := must[LinkRequest](t)(policy.DecodeLinkRequest(home.LinkRequest()))
	cert := must[*policy.DeviceCert](t)(bob.LinkDevice(ctx, req))
	home.Admission = "home"
	home.Extra = "home:\n  owner_cert: " + policy.EncodeCertToken(cert) + "\n" + home.Extra
	home.Start()
	ok(t, bob.AddHub(ctx, server, home.URL))
	must[policy.ID](t)(bob.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))))
	waitSameIDs(t, bob, community.URL, home.URL, server, general, 30*time.Second)
}

// A hub added to a server with history: the storage grant's publication
// brings it the state log, and it serves the history it may store.
func TestGrantedHubHostsTheServer(t *testing.T) {
	community := p2pHub(t, "", "")
	community.Start()
	alice := newClient(t, "alice")
	server := must[policy.ID](t)(alice.CreateServer(ctx, "club", []string{community.URL}, ServerOptions{}))
	general := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated}))
	for i := range 20 {
		must[*Sent](t)(alice.Send(ctx, server, general, fmt.Sprint("history ", i)))
	}
	added := p2pHub(t, "", "", community.P2P)
	added.Start()
	ok(t, alice.GrantStorage(ctx, server, added.URL))
	waitSameIDs(t, alice, community.URL, added.URL, server, general, 30*time.Second)
	must[*Sent](t)(alice.Send(ctx, server, general, "after the grant")) // and it takes posts
}
