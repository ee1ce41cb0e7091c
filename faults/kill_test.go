package faults

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/policy"
)

var ctx = context.Background()

// poster signs envelopes as a member and posts them to a hub, keeping
// every receipt it is given.
type poster struct {
	hub     *hubapi.Client
	dev     *client.Device
	server  policy.ID
	channel policy.ID

	mu       sync.Mutex
	receipts map[policy.ID]*policy.Receipt
	refused  int
	observe  func(code string) // told "ok" or the refusal's code of every envelope, if set
	timeout  time.Duration     // a post unanswered this long counts as "transport"; default 5 s
}

func newPoster(t *testing.T, h *clienttest.Hub) *poster {
	t.Helper()
	c, err := client.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.CreateIdentity(ctx, "poster"); err != nil {
		t.Fatal(err)
	}
	server, err := c.CreateServer(ctx, "faults", []string{h.URL}, client.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Guaranteed})
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := c.Device()
	return &poster{hub: hubapi.New(h.URL), dev: dev, server: server, channel: ch, receipts: map[policy.ID]*policy.Receipt{}}
}

// post posts a batch; acknowledged envelopes are remembered.
func (p *poster) post(n int) {
	var raws [][]byte
	for i := range n {
		e, err := policy.NewEnvelope(p.dev.Signer(), policy.EnvelopeBody{Server: p.server, Channel: p.channel, Epoch: 1,
			Time: time.Now().UnixMilli(), Ciphertext: []byte(fmt.Sprintf("%d-%d", time.Now().UnixNano(), i))})
		if err != nil {
			panic(err)
		}
		raws = append(raws, e.Raw)
	}
	cctx, cancel := context.WithTimeout(ctx, cmp.Or(p.timeout, 5*time.Second))
	defer cancel()
	res, err := p.hub.Post(cctx, raws)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.refused += n
		if p.observe != nil {
			code := "transport"
			if he, ok := err.(*hubapi.Error); ok {
				code = he.Code
			}
			p.observe(code)
		}
		return
	}
	for i, r := range res {
		if r.Receipt == nil {
			p.refused++
			if p.observe != nil && r.Error != nil {
				p.observe(r.Error.Code)
			}
			continue
		}
		if p.observe != nil {
			p.observe("ok")
		}
		rc, err := policy.ParseReceipt(r.Receipt)
		if err == nil && rc.Envelope == policy.Sum(raws[i]) {
			p.receipts[rc.Envelope] = rc
		}
	}
}

// acked counts the envelopes acknowledged so far.
func (p *poster) acked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.receipts)
}

// check verifies that the hub holds every acknowledged envelope.
func (p *poster) check(t *testing.T, h *clienttest.Hub) {
	t.Helper()
	hub := hubapi.New(h.URL)
	token, err := hub.Login(ctx, p.dev)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.receipts) == 0 {
		t.Fatal("nothing was acknowledged: the test proves nothing")
	}
	for id, rc := range p.receipts {
		e, err := hub.Envelope(ctx, token, p.server, id)
		if err != nil {
			t.Fatalf("acknowledged envelope %s (seq %d) is gone: %v", id, rc.Seq, err)
		}
		if e.Seq != rc.Seq {
			t.Fatalf("envelope %s: receipt says seq %d, the hub now %d", id, rc.Seq, e.Seq)
		}
	}
	t.Logf("%d acknowledged envelopes all present; %d refused or unanswered", len(p.receipts), p.refused)
}

// SIGKILL the hub again and again during sustained ingest: every envelope
// that got a receipt is there after each restart.
func TestKillDuringIngest(t *testing.T) {
	for _, profile := range clienttest.Profiles {
		t.Run(profile, func(t *testing.T) {
			h := unlimitedHub(t, profile)
			p := newPoster(t, h)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						p.post(20)
					}
				}()
			}
			for range 5 {
				time.Sleep(700 * time.Millisecond)
				h.Kill()
				h.Start()
			}
			time.Sleep(500 * time.Millisecond)
			close(stop)
			wg.Wait()
			p.check(t, h)
		})
	}
}

// unlimitedHub starts a hub without per-sender and per-source rate limits:
// the load comes from one identity on one address.
func unlimitedHub(t *testing.T, profile string) *clienttest.Hub {
	t.Helper()
	h := clienttest.NewHub(t, profile)
	h.Extra = "limits:\n  post_rate: -1\n  source_rate: -1\n"
	h.Start()
	return h
}
