package client

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/policy"
)

// A reader tailing a channel while 8 members post concurrently to one hub
// process ends with every envelope the hub receipted, each delivered to it
// once, in the hub's order: the set it was shown equals the set receipted.
func TestTailMissesNothingUnderConcurrentPosters(t *testing.T) {
	hub := clienttest.NewHub(t, "sqlite")
	hub.Extra = "limits:\n  post_rate: -1\n"
	hub.Start()
	alice := newClient(t, "alice")
	server := must[policy.ID](t)(alice.CreateServer(ctx, "busy", []string{hub.URL}, ServerOptions{}))
	general := must[policy.ID](t)(alice.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated}))
	reader := newClient(t, "reader")
	must[policy.ID](t)(reader.Join(ctx, must[string](t)(alice.Invite(ctx, server, 10, time.Hour, nil, nil))))
	var posters []*Client
	for i := range 4 {
		p := newClient(t, fmt.Sprint("poster ", i))
		must[policy.ID](t)(p.Join(ctx, must[string](t)(alice.Invite(ctx, server, 1, time.Hour, nil, nil))))
		posters = append(posters, p)
	}
	for _, p := range append(posters, reader) {
		must[int](t)(p.SyncState(ctx, server))
	}
	tctx, stop := context.WithCancel(ctx)
	var mu sync.Mutex
	shown := map[policy.ID]int{}
	tailed := make(chan error, 1)
	go func() {
		tailed <- reader.Tail(tctx, server, general, func(m Message) {
			mu.Lock()
			shown[m.ID]++
			mu.Unlock()
		})
	}()
	time.Sleep(300 * time.Millisecond) // subscribed
	const each = 60
	var receipted []policy.ID
	var wg sync.WaitGroup
	for i := range 8 {
		p := posters[i%len(posters)]
		wg.Go(func() {
			for j := range each {
				sent, err := p.Send(ctx, server, general, fmt.Sprintf("poster %d message %d", i, j))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				receipted = append(receipted, sent.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		var missing []policy.ID
		for _, id := range receipted {
			if shown[id] == 0 {
				missing = append(missing, id)
			}
		}
		mu.Unlock()
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tailing reader was never shown %d of %d receipted envelopes, e.g. %v", len(missing), len(receipted), missing[:min(3, len(missing))])
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	<-tailed
	mu.Lock()
	defer mu.Unlock()
	for id, n := range shown {
		if n != 1 {
			t.Errorf("envelope %s shown %d times", id, n)
		}
		if !slices.Contains(receipted, id) && n > 0 {
			// key bundles are not shown as messages; anything else shown was receipted
			t.Logf("shown without a receipt here: %s (a key bundle?)", id)
		}
	}
}
