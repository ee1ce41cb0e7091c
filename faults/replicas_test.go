package faults

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// subscriber records what one WebSocket subscription to a hub process
// delivered, and whether and why it was cut off.
type subscriber struct {
	name string
	mu   sync.Mutex
	seqs []uint64
	ids  []policy.ID
	cut  string // "" while connected
	// resumed says why the first subscription ended, for one that then
	// subscribed again elsewhere from the last seq it had.
	resumed string
}

// runResuming follows sub and, once it ends, subscribes again at h from
// the last seq received, as a client behind a load balancer does when its
// hub process is gone: the two together must deliver everything.
func (s *subscriber) runResuming(sub *hubapi.Subscription, h *hubapi.Client, token string, server, channel policy.ID) {
	s.run(sub)
	last, cut := s.last()
	s.mu.Lock()
	s.cut, s.resumed = "", cut
	s.mu.Unlock()
	next, err := h.Subscribe(ctx, token, []wire.Topic{{Server: server, Channel: channel, After: max(last, 1)}})
	if err != nil {
		s.mu.Lock()
		s.cut = "resuming: " + err.Error()
		s.mu.Unlock()
		return
	}
	defer next.Close()
	s.run(next)
}

func (s *subscriber) run(sub *hubapi.Subscription) {
	for f := range sub.C {
		switch f.Op {
		case wire.OpMsg:
			s.mu.Lock()
			s.seqs, s.ids = append(s.seqs, f.Seq), append(s.ids, policy.Sum(f.Raw))
			s.mu.Unlock()
		case wire.OpCut:
			s.mu.Lock()
			s.cut = "cut: " + f.Error.Code
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cut == "" {
		s.cut = fmt.Sprintf("closed: %v", sub.Err())
	}
}

func (s *subscriber) last() (uint64, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seqs) == 0 {
		return 0, s.cut
	}
	return s.seqs[len(s.seqs)-1], s.cut
}

// check compares what the subscriber got with what storage holds after
// from: every stored envelope up to upTo, in sequence order, each once.
// A failure names the envelopes missing, duplicated or out of order.
func (s *subscriber) check(t *testing.T, stored []wire.Envelope, from, upTo uint64) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[policy.ID]uint64{}
	for _, e := range stored {
		if e.Seq > from && e.Seq <= upTo {
			want[e.ID] = e.Seq
		}
	}
	got := map[policy.ID]bool{}
	var problems []string
	for i, id := range s.ids {
		if got[id] {
			problems = append(problems, fmt.Sprintf("%s (seq %d) delivered twice", id, s.seqs[i]))
		}
		got[id] = true
		if i > 0 && s.seqs[i] <= s.seqs[i-1] {
			problems = append(problems, fmt.Sprintf("seq %d delivered after seq %d", s.seqs[i], s.seqs[i-1]))
		}
		if seq, ok := want[id]; !ok {
			problems = append(problems, fmt.Sprintf("%s (seq %d) delivered but not stored in (%d, %d]", id, s.seqs[i], from, upTo))
		} else if seq != s.seqs[i] {
			problems = append(problems, fmt.Sprintf("%s delivered as seq %d, stored as seq %d", id, s.seqs[i], seq))
		}
	}
	var missing []string
	for id, seq := range want {
		if !got[id] {
			missing = append(missing, fmt.Sprintf("%s (seq %d)", id, seq))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("%d stored envelopes never delivered: %v", len(missing), missing[:min(10, len(missing))]))
	}
	if len(problems) > 0 {
		t.Errorf("subscriber %s (%s), %d received, %d stored in (%d, %d]: %v", s.name, s.cut, len(s.ids), len(want), from, upTo, problems[:min(10, len(problems))])
	}
	return len(s.ids)
}

// postMessages posts a batch of envelopes whose payload is marked as a
// message (its first byte), so that a member's client keeps them as
// messages it has no key for, and remembers the acknowledged ones.
func postMessages(p *poster, n int) {
	var raws [][]byte
	for i := range n {
		e, err := policy.NewEnvelope(p.dev.Signer(), policy.EnvelopeBody{Server: p.server, Channel: p.channel, Epoch: 1,
			Time: time.Now().UnixMilli(), Ciphertext: fmt.Appendf([]byte{1}, "%d-%d", time.Now().UnixNano(), i)})
		if err != nil {
			panic(err)
		}
		raws = append(raws, e.Raw)
	}
	cctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	res, err := p.hub.Post(cctx, raws)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.refused += n
		if he := (*hubapi.Error)(nil); !errors.As(err, &he) && p.observe != nil {
			p.observe("transport")
		}
		return
	}
	for i, r := range res {
		if r.Receipt == nil {
			p.refused++
			continue
		}
		if rc, err := policy.ParseReceipt(r.Receipt); err == nil && rc.Envelope == policy.Sum(raws[i]) {
			p.receipts[rc.Envelope] = rc
		}
	}
}

// readAll reads a channel's stored envelopes from a hub, in order.
func readAll(t *testing.T, h *hubapi.Client, dev *client.Device, server, channel policy.ID) []wire.Envelope {
	t.Helper()
	token, err := h.Login(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	var out []wire.Envelope
	for after := uint64(0); ; {
		page, err := h.Read(ctx, token, server, channel, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Envelopes...)
		after = page.Next
		if !page.More {
			return out
		}
	}
}

// Two hub processes share one PostgreSQL database, one bucket and the node
// key. Eight posters post to both (those of the killed one fail over to
// the other); one process is killed with SIGKILL mid-stream. Every
// subscriber on either process got exactly what was stored while it was
// connected, in order, once; a client tailing the survivor ends with every
// envelope any poster got a receipt for.
func TestReplicaKilledMidStream(t *testing.T) {
	began := time.Now()
	victim := clienttest.NewHub(t, "postgres")
	victim.Extra = "limits:\n  post_rate: -1\n  source_rate: -1\n"
	victim.Start()
	survivor := victim.Replica()
	survivor.Start()
	hubs := []*hubapi.Client{hubapi.New(victim.URL), hubapi.New(survivor.URL)}

	member, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { member.Close() })
	if _, err := member.CreateIdentity(ctx, "member"); err != nil {
		t.Fatal(err)
	}
	server, err := member.CreateServer(ctx, "replicas", []string{victim.URL}, client.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	channel, err := member.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Guaranteed})
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := member.Device()
	// The tail follows the survivor only: the victim is no hub of it.
	if err := member.AddHub(ctx, server, survivor.URL); err != nil {
		t.Fatal(err)
	}
	if err := member.PreferHub(ctx, server, survivor.URL); err != nil {
		t.Fatal(err)
	}

	var attempted atomic.Int64
	// One envelope first, so that every subscription starts from a cursor
	// (seq 1) and "what was stored while it was connected" has a start.
	seed := &poster{hub: hubs[1], dev: dev, server: server, channel: channel, receipts: map[policy.ID]*policy.Receipt{}, timeout: 5 * time.Second}
	postMessages(seed, 1)
	attempted.Add(1)
	if seed.acked() != 1 {
		t.Fatal("the first envelope was not acknowledged")
	}

	// Two subscribers on each process, and two more on the victim that
	// resume at the survivor when it is gone.
	survivorToken, err := hubs[1].Login(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	subs := make([]*subscriber, 6)
	for i := range subs {
		h := hubs[i%2]
		if i >= 4 {
			h = hubs[0]
		}
		subs[i] = &subscriber{name: fmt.Sprintf("%d@%s", i, []string{"victim", "survivor"}[i%2])}
		token, err := h.Login(ctx, dev)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := h.Subscribe(ctx, token, []wire.Topic{{Server: server, Channel: channel, After: 1}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sub.Close() })
		if i >= 4 {
			subs[i].name = fmt.Sprintf("%d@victim-then-survivor", i)
			go subs[i].runResuming(sub, hubs[1], survivorToken, server, channel)
			continue
		}
		go subs[i].run(sub)
	}
	tailCtx, stopTail := context.WithCancel(ctx)
	var pushed atomic.Int64
	tailDone := make(chan error, 1)
	go func() {
		for {
			err := member.Tail(tailCtx, server, channel, func(client.Message) { pushed.Add(1) })
			if tailCtx.Err() != nil {
				tailDone <- nil
				return
			}
			if !client.IsCode(err, wire.CodeSlow) && !client.IsCode(err, wire.CodeGoingAway) {
				tailDone <- err
				return
			}
		}
	}()

	// Eight posters, four per process; a poster whose process is gone
	// moves to the other, as behind a load balancer.
	posters := make([]*poster, 8)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range posters {
		p := &poster{hub: hubs[i%2], dev: dev, server: server, channel: channel, receipts: map[policy.ID]*policy.Receipt{}, timeout: 3 * time.Second}
		p.observe = func(code string) {
			if code == "transport" {
				p.hub = hubs[1] // post calls this on the poster's own goroutine
			}
		}
		posters[i] = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				attempted.Add(5)
				postMessages(p, 5)
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	victim.Kill()
	killedAt := time.Since(began)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()

	stored := readAll(t, hubs[1], dev, server, channel)
	maxSeq := stored[len(stored)-1].Seq
	storedIDs := map[policy.ID]bool{}
	for _, e := range stored {
		storedIDs[e.ID] = true
	}
	receipted := map[policy.ID]bool{}
	for _, p := range append(posters, seed) {
		for id := range p.receipts {
			receipted[id] = true
			if !storedIDs[id] {
				t.Errorf("envelope %s got a receipt (seq %d) and is not stored", id, p.receipts[id].Seq)
			}
		}
	}

	// Subscribers still connected are given time to reach the last seq.
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range subs {
		for {
			last, cut := s.last()
			if cut != "" || last >= maxSeq || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	connected := 0
	figures := ""
	for _, s := range subs {
		last, cut := s.last()
		upTo := maxSeq
		if cut != "" {
			upTo = last // what it had when cut off: a prefix of the stored order
		} else {
			connected++
		}
		n := s.check(t, stored, 1, upTo)
		state := map[bool]string{true: cut, false: "connected"}[cut != ""]
		if s.resumed != "" {
			state = "resumed after " + s.resumed + ", " + state
		}
		figures += fmt.Sprintf(" %s=%d(%s)", s.name, n, state)
	}
	for _, s := range subs[4:] {
		if s.resumed == "" {
			t.Errorf("subscriber %s was never cut off at the victim", s.name)
		}
	}
	if connected < 4 {
		t.Errorf("%d subscribers followed to the end, want the survivor's two and the two that resumed there", connected)
	}

	// The tailing client ends holding every receipted envelope, and
	// nothing that is not stored.
	var held []client.Message
	deadline = time.Now().Add(20 * time.Second)
	for {
		if held, err = member.History(ctx, server, channel, 0); err != nil {
			t.Fatal(err)
		}
		has := map[policy.ID]bool{}
		for _, m := range held {
			has[m.ID] = true
		}
		var missing []policy.ID
		for id := range receipted {
			if !has[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the client tailing the survivor lacks %d of %d receipted envelopes: %v", len(missing), len(receipted), missing[:min(10, len(missing))])
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopTail()
	if err := <-tailDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("tail: %v", err)
	}
	for _, m := range held {
		if !storedIDs[m.ID] {
			t.Errorf("the tailing client holds %s, which is not stored", m.ID)
		}
	}
	t.Logf("posted %d envelopes, %d receipted, %d stored (max seq %d); victim killed at %v; subscribers:%s; tail held %d (%d pushed live); %v in all",
		attempted.Load(), len(receipted), len(stored), maxSeq, killedAt.Round(time.Millisecond), figures, len(held), pushed.Load(), time.Since(began).Round(time.Millisecond))
}
