package storagetest

import (
	"slices"
	"testing"

	"github.com/guildhall/guildhall/policy"
)

// testEnvelopeBlobs: a blob named by two envelopes is orphaned only when
// both are forgotten; another server's envelopes do not keep it.
func testEnvelopeBlobs(t *testing.T, m Meta) {
	a, b := ServerID("eb-a"), ServerID("eb-b")
	blob, other := policy.Sum([]byte("blob")), policy.Sum([]byte("other blob"))
	e1, e2, e3 := policy.Sum([]byte("e1")), policy.Sum([]byte("e2")), policy.Sum([]byte("e3"))
	for _, step := range []struct {
		server, env policy.ID
		blobs       []policy.ID
	}{{a, e1, []policy.ID{blob, other}}, {a, e2, []policy.ID{blob}}, {b, e3, []policy.ID{blob}}, {a, e1, []policy.ID{blob}}} {
		if err := m.AddEnvelopeBlobs(ctx, step.server, step.env, step.blobs); err != nil {
			t.Fatal(err)
		}
	}
	orphans, err := m.DropEnvelopeBlobs(ctx, a, e1)
	if err != nil || !slices.Equal(orphans, []policy.ID{other}) {
		t.Fatalf("dropping e1: orphans %v, %v; want only the blob no other envelope names", orphans, err)
	}
	if orphans, err = m.DropEnvelopeBlobs(ctx, a, e1); err != nil || len(orphans) != 0 {
		t.Fatalf("dropping e1 again: %v, %v", orphans, err)
	}
	if orphans, err = m.DropEnvelopeBlobs(ctx, a, e2); err != nil || !slices.Equal(orphans, []policy.ID{blob}) {
		t.Fatalf("dropping e2: %v, %v; want the blob (server b's envelope is not a's)", orphans, err)
	}
}
