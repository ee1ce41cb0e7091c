package fanout

import (
	"errors"
	"sync"
	"testing"

	"github.com/guildhall/guildhall/policy"
)

func topic(name string) Topic {
	return Topic{Server: policy.Sum([]byte("server")), Channel: policy.Sum([]byte(name))}
}

func msg(t Topic, seq uint64) *Message {
	return &Message{Topic: t, Seq: seq, Payload: []byte{byte(seq)}}
}

func TestDeliversToEverySubscriberOfTheTopicOnly(t *testing.T) {
	b := New(Config{QueueLen: 16})
	general, other := topic("general"), topic("other")
	var subs []*Subscription
	for range 50 {
		s, err := b.Subscribe(general)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	elsewhere, _ := b.Subscribe(other)
	for seq := uint64(1); seq <= 10; seq++ {
		if n := b.Publish(msg(general, seq)); n != 50 {
			t.Fatalf("published to %d subscribers, want 50", n)
		}
	}
	for _, s := range subs {
		for seq := uint64(1); seq <= 10; seq++ {
			if m := <-s.C(); m.Seq != seq {
				t.Fatalf("got seq %d, want %d: order not kept", m.Seq, seq)
			}
		}
	}
	if len(elsewhere.C()) != 0 {
		t.Fatal("a subscriber of another topic received the message")
	}
}

// A subscriber that stops reading is cut off with a resume cursor once its
// queue is full; the others keep receiving everything, and the cut-off one
// loses nothing: its queue plus storage after the cursor hold every message.
func TestSlowSubscriberIsCutOffWithResumeCursor(t *testing.T) {
	b := New(Config{QueueLen: 8})
	general := topic("general")
	slow, _ := b.Subscribe(general)
	fast, _ := b.Subscribe(general)
	var got []uint64
	for seq := uint64(1); seq <= 100; seq++ {
		b.Publish(msg(general, seq))
		got = append(got, (<-fast.C()).Seq)
	}
	if len(got) != 100 || got[99] != 100 {
		t.Fatal("the fast subscriber missed messages")
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("slow subscriber not cut off")
	}
	if !errors.Is(slow.Err(), ErrSlow) {
		t.Fatalf("err = %v", slow.Err())
	}
	cursor := slow.Resume()[general]
	var queued []uint64
	for len(slow.C()) > 0 {
		queued = append(queued, (<-slow.C()).Seq)
	}
	if len(queued) != 8 || queued[7] != cursor || cursor != 8 {
		t.Fatalf("queued %v, cursor %d: draining the queue then reading after the cursor must miss nothing", queued, cursor)
	}
	if n := b.Publish(msg(general, 101)); n != 1 {
		t.Fatalf("cut-off subscriber still counted: %d", n)
	}
}

func TestCloseDetaches(t *testing.T) {
	b := New(Config{})
	general := topic("general")
	s, _ := b.Subscribe(general, topic("x"))
	s.Close()
	if !errors.Is(s.Err(), ErrClosed) {
		t.Fatalf("err = %v", s.Err())
	}
	if n := b.Publish(msg(general, 1)); n != 0 {
		t.Fatal("closed subscription received a message")
	}
	for i := range b.shards {
		if len(b.shards[i].subs) != 0 {
			t.Fatal("closed subscription left in the maps")
		}
	}
	s.Close() // idempotent
}

func TestSubscriptionTopicBound(t *testing.T) {
	b := New(Config{MaxTopics: 2})
	if _, err := b.Subscribe(topic("a"), topic("b"), topic("c")); err == nil {
		t.Fatal("subscription over MaxTopics accepted")
	}
	if _, err := b.Subscribe(); err == nil {
		t.Fatal("empty subscription accepted")
	}
}

func TestConcurrentPublishSubscribeClose(t *testing.T) {
	b := New(Config{QueueLen: 4, Shards: 4})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				tp := topic(string(rune('a' + (w+i)%5)))
				s, err := b.Subscribe(tp)
				if err != nil {
					t.Error(err)
					return
				}
				b.Publish(msg(tp, uint64(i)))
				if i%3 == 0 {
					for len(s.C()) > 0 {
						<-s.C()
					}
				}
				s.Close()
			}
		})
	}
	wg.Wait()
	for i := range b.shards {
		if len(b.shards[i].subs) != 0 {
			t.Fatal("subscriptions leaked")
		}
	}
}

// BenchmarkPublish10k publishes to one channel with 10,000 subscribers that
// keep up, and reports deliveries per second.
func BenchmarkPublish10k(b *testing.B) {
	br := New(Config{})
	general := topic("general")
	subs := make([]*Subscription, 10_000)
	for i := range subs {
		subs[i], _ = br.Subscribe(general)
	}
	b.ResetTimer()
	for i := range b.N {
		if n := br.Publish(msg(general, uint64(i))); n != len(subs) {
			b.Fatalf("delivered to %d", n)
		}
		for _, s := range subs {
			<-s.C()
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(subs))/b.Elapsed().Seconds(), "deliveries/s")
}

// A message's delivery form is made once, by whichever subscriber asks
// first, and every subscriber gets the same bytes.
func TestEncodedOnceForAllSubscribers(t *testing.T) {
	m := msg(topic("general"), 7)
	var mu sync.Mutex
	calls := 0
	encode := func(m *Message) []byte {
		mu.Lock()
		calls++
		mu.Unlock()
		return append([]byte("frame"), m.Payload...)
	}
	got := make([][]byte, 64)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = m.Encoded(encode) }()
	}
	wg.Wait()
	if calls != 1 {
		t.Fatalf("encoded %d times", calls)
	}
	for _, b := range got {
		if &b[0] != &got[0][0] {
			t.Fatal("subscribers got different copies")
		}
	}
}
