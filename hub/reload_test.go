package hub_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// The allow-list and the default quota change while the hub serves
// (SetLimits, a reload): a server listed later is admitted, with the quota
// of the moment, and reloads racing admissions are safe (go test -race).
func TestSetLimitsWhileServing(t *testing.T) {
	f := newFixture(t, hub.AllowList, storage.Quota{})
	g := f.Event("alice", &policy.Genesis{Creators: []policy.PublicKey{policy.KeyOf(key("alice"))}, Policy: policy.ServerPolicy{Name: "c"}})
	if _, err := f.Publish(g); !errors.Is(err, storage.ErrNotHosted) {
		t.Fatalf("unlisted: %v", err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // a reload loop racing the publications below
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				f.Hub.SetLimits(hub.Limits{Allowed: nil, PostRate: 10})
			}
		}
	}()
	for range 20 {
		f.Publish(g)
	}
	close(stop)
	wg.Wait()
	f.Hub.SetLimits(hub.Limits{Allowed: []policy.ID{g.ID}, DefaultQuota: storage.Quota{Blobs: 9}})
	if _, err := f.Publish(g); err != nil {
		t.Fatalf("listed by a reload: %v", err)
	}
	if tn, err := f.Store.Tenant(context.Background(), g.ID); err != nil || tn.Quota.Blobs != 9 {
		t.Fatalf("tenant %+v, %v: want the reloaded default quota", tn, err)
	}
}
