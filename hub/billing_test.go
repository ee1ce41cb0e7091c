package hub_test

import (
	"context"
	"testing"
	"time"

	"github.com/guildhall/guildhall/hub/hubtest"
	"github.com/guildhall/guildhall/storage"
)

// RunLedger samples every tenant at the end of each interval with the
// egress counted in it, and on a graceful stop writes the egress counted
// since into the sample of the interval under way, on both profiles.
func TestRunLedger(t *testing.T) {
	hubtest.EachProfile(t, func(t *testing.T, profile string) {
		f := hubtest.New(t, profile)
		f.Community()
		server := f.Gen.ID
		at := f.Now().Truncate(time.Second).Add(time.Second).UnixMilli()
		samples := func() []storage.Sample {
			got, err := f.Store.Samples(context.Background(), 0, 1<<62, storage.SampleCursor{}, 10)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		f.Hub.CountEgress(server, 100)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.Hub.RunLedger(ctx, time.Second) }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if got := samples(); len(got) == 1 && got[0].Egress == 100 {
				if got[0].At != at || got[0].Server != server || got[0].Usage.Bytes == 0 {
					t.Fatalf("sample = %+v, want one of %s at %d with its usage", got[0], server, at)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no sample with the egress after 10 s: %+v", samples())
			}
			time.Sleep(20 * time.Millisecond)
		}
		f.Hub.CountEgress(server, 50)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := samples(); len(got) != 1 || got[0].Egress != 150 {
			t.Fatalf("after a graceful stop: %+v, want the egress counted since added (150)", got)
		}
		if err := f.Hub.RunLedger(context.Background(), 1500*time.Millisecond); err == nil {
			t.Fatal("an interval of 1.5 s was accepted: the ledger's times are whole seconds")
		}
	})
}
