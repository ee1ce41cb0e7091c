package client

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/policy"
)

// eventReads records the state-log reads a client makes (their after=).
type eventReads struct {
	mu     sync.Mutex
	afters []string
}

func (r *eventReads) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/events") && req.Method == "GET" {
		r.mu.Lock()
		r.afters = append(r.afters, req.URL.Query().Get("after"))
		r.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (r *eventReads) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.afters
	r.afters = nil
	return out
}

// Refresh reads only what the hub logged since the last read there;
// SyncState reads the whole log again.
func TestRefreshReadsOnlyWhatIsNew(t *testing.T) {
	ctx := context.Background()
	hub := startHub(t, "sqlite")
	alice, bob := newClient(t, "alice"), newClient(t, "bob")
	server := must[policy.ID](t)(alice.CreateServer(ctx, "club", []string{hub.URL}, ServerOptions{}))
	tok := must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))
	must[policy.ID](t)(bob.Join(ctx, tok))
	reads := &eventReads{}
	bob.hub(hub.URL).HTTP = &http.Client{Transport: reads}

	if n := must[int](t)(bob.Refresh(ctx, server)); n != 0 {
		t.Fatalf("a refresh with nothing new brought %d events", n)
	}
	afters := reads.take()
	if len(afters) != 1 || afters[0] == "0" {
		t.Fatalf("a refresh read the log after %v, want once after what bob read joining", afters)
	}
	must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "news", Durability: policy.Replicated}))
	if n := must[int](t)(bob.Refresh(ctx, server)); n != 1 {
		t.Fatalf("a refresh after a channel was created brought %d events", n)
	}
	if again := reads.take(); len(again) != 1 || again[0] != afters[0] {
		t.Fatalf("second refresh read after %v, want after %s", again, afters[0])
	}
	if _, err := bob.ChannelByName(ctx, server, "news"); err != nil {
		t.Fatal(err)
	}
	must[int](t)(bob.SyncState(ctx, server))
	if full := reads.take(); len(full) == 0 || full[0] != "0" {
		t.Fatalf("server sync read after %v, want the whole log", full)
	}
}
