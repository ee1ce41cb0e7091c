package pgnotify

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/fanout"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage/storagetest"
)

type recorder struct {
	mu     sync.Mutex
	notes  []fanout.Note
	resync int
}

func (r *recorder) Remote(_ context.Context, n fanout.Note) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, n)
	return nil
}

func (r *recorder) Resync(context.Context) { r.mu.Lock(); r.resync++; r.mu.Unlock() }

func (r *recorder) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.notes) }

func note(i int) fanout.Note {
	return fanout.Note{Server: policy.Sum([]byte{byte(i)}), Channel: policy.Sum([]byte{byte(i), 1}), Seq: uint64(i), ID: policy.Sum([]byte{byte(i), 2})}
}

// Notes cross between two buses in order, split over as many notifications
// as PostgreSQL's payload limit needs; a bus ignores its own.
func TestNotesCrossProcesses(t *testing.T) {
	url := storagetest.Require(t, "GUILDHALL_TEST_POSTGRES")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() (*Bus, *recorder) {
		b, err := New(ctx, Config{URL: url, Channel: "pgnotify_test"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		r := &recorder{}
		if err := b.Listen(ctx, r); err != nil {
			t.Fatal(err)
		}
		return b, r
	}
	a, ra := open()
	_, rb := open()
	var sent []fanout.Note
	for i := range 200 { // about 140 bytes each: several notifications
		sent = append(sent, note(i))
	}
	if err := a.Notify(ctx, sent); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rb.count() < len(sent) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	rb.mu.Lock()
	got := append([]fanout.Note(nil), rb.notes...)
	rb.mu.Unlock()
	if len(got) != len(sent) {
		t.Fatalf("received %d of %d notes", len(got), len(sent))
	}
	for i := range sent {
		if got[i] != sent[i] {
			t.Fatalf("note %d differs", i)
		}
	}
	if ra.count() != 0 {
		t.Fatalf("a bus heard its own %d notes", ra.count())
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	b := &Bus{origin: "me"}
	for _, p := range []string{"", "other !!!", "other AAAA"} {
		if _, err := b.decode(p); err == nil {
			t.Errorf("%q: accepted", p)
		}
	}
	if n, err := b.decode("me anything"); err != nil || n != nil {
		t.Fatal("own payload not ignored")
	}
}
