package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/guildhall/guildhall/internal/ratelimit"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/wire"
)

// APIConfig bounds the public API. Zero values take the documented defaults.
type APIConfig struct {
	// Version is reported by /v1/info.
	Version string
	// MaxBody bounds a request body other than a blob; default 4 MiB.
	MaxBody int64
	// MaxBatch bounds the objects of one request or frame; default 1,000.
	MaxBatch int
	// MaxFrame bounds one WebSocket message; default 4 MiB.
	MaxFrame int64
	// SourceRate and SourceBurst limit requests, WebSocket frames and posted
	// objects per source address (token bucket); defaults 500/s and 2,000.
	// A negative SourceRate disables the limit.
	SourceRate  float64
	SourceBurst int
	// MaxSockets bounds open WebSockets; default 20,000.
	MaxSockets int
	// MaxInflight bounds concurrent requests of one WebSocket; default 64.
	MaxInflight int
	// WriteTimeout bounds one write to a WebSocket; default 10 s.
	WriteTimeout time.Duration
	// Recheck is how often a subscription's read permission is checked
	// again (bans and revocations end subscriptions within it); default 10 s.
	Recheck time.Duration
	// Coalesce is the longest a pushed message waits so that one write to
	// a subscriber carries several; answers are never delayed. Default 25 ms.
	Coalesce time.Duration
	// PresignTTL is the lifetime of presigned blob URLs; default 15 min.
	PresignTTL time.Duration
	// Logger; default discards.
	Logger *slog.Logger
}

func (c *APIConfig) defaults() {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxBody, 4<<20)
	def(&c.MaxFrame, 4<<20)
	for _, p := range []struct {
		v *int
		d int
	}{{&c.MaxBatch, 1000}, {&c.SourceBurst, 2000}, {&c.MaxSockets, 20000}, {&c.MaxInflight, 64}} {
		if *p.v <= 0 {
			*p.v = p.d
		}
	}
	if c.SourceRate == 0 {
		c.SourceRate = 500
	}
	for _, p := range []struct {
		v *time.Duration
		d time.Duration
	}{{&c.WriteTimeout, 10 * time.Second}, {&c.Recheck, 10 * time.Second}, {&c.PresignTTL, 15 * time.Minute}, {&c.Coalesce, 25 * time.Millisecond}} {
		if *p.v <= 0 {
			*p.v = p.d
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// API serves a Service over HTTP and WebSocket (docs/API.md).
type API struct {
	svc     *Service
	cfg     APIConfig
	sources *ratelimit.Limiter[netip.Addr] // nil when unlimited
	mux     *http.ServeMux

	mu      sync.Mutex // guards sockets and closing
	sockets map[*socket]struct{}
	closing bool
	work    sync.WaitGroup // requests of sockets in flight
}

// NewAPI returns the public API of svc.
func NewAPI(svc *Service, cfg APIConfig) *API {
	cfg.defaults()
	a := &API{svc: svc, cfg: cfg, mux: http.NewServeMux(), sockets: map[*socket]struct{}{}}
	if cfg.SourceRate > 0 {
		a.sources = ratelimit.New[netip.Addr](cfg.SourceRate, cfg.SourceBurst, 1<<16)
	}
	a.route("GET /v1/info", a.info)
	a.route("POST /v1/auth/challenge", a.challenge)
	a.route("POST /v1/auth/session", a.session)
	a.route("POST /v1/servers/{server}/events", a.publishEvents)
	a.route("GET /v1/servers/{server}/events", a.events)
	a.route("POST /v1/envelopes", a.postEnvelopes)
	a.route("GET /v1/servers/{server}/channels/{channel}/envelopes", a.readChannel)
	a.route("POST /v1/servers/{server}/channels/{channel}/reconcile", a.reconcile)
	a.route("GET /v1/servers/{server}/envelopes/{id}", a.envelope)
	a.route("POST /v1/tombstones", a.tombstones)
	a.route("PUT /v1/servers/{server}/blobs/{blob}", a.putBlob)
	a.route("GET /v1/servers/{server}/blobs/{blob}", a.getBlob)
	a.route("POST /v1/servers/{server}/blobs/{blob}/presign", a.presign)
	a.route("GET /v1/ws", a.websocket)
	health(a.mux, svc)
	return a
}

// Handler returns the API's HTTP handler.
func (a *API) Handler() http.Handler { return a.mux }

// handlerFunc is an API handler: it writes its success itself and returns
// an error, which the wrapper writes as {code, message}.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (a *API) route(pattern string, h handlerFunc) {
	name := pattern[strings.IndexByte(pattern, ' ')+1:]
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		err := a.limitSource(r, 1)
		if err == nil {
			err = h(w, r)
		}
		status := 200
		if err != nil {
			we := wireError(err)
			status = wire.Status(we.Code)
			if status == http.StatusInternalServerError {
				a.cfg.Logger.Error("hub: request failed", "route", name, "err", err)
			}
			writeError(w, status, we)
		}
		if name != "/v1/ws" || err != nil { // a WebSocket's lifetime is not a request's latency
			a.svc.metrics.requests.WithLabelValues(name, strconv.Itoa(status/100)+"xx").Observe(time.Since(start).Seconds())
		}
	})
}

func writeError(w http.ResponseWriter, status int, we *wire.Error) {
	b, _ := wire.Marshal(wire.JSON, we)
	w.Header().Set("Content-Type", wire.JSON)
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	w.Write(b)
}

// limitSource spends n tokens of the request's source address.
func (a *API) limitSource(r *http.Request, n int) error {
	if a.sources == nil {
		return nil
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return nil // not an IP transport (tests over pipes)
	}
	if !a.sources.AllowN(ap.Addr().Unmap(), n) {
		a.svc.metrics.rateLimited.WithLabelValues("source").Inc()
		return fmt.Errorf("source %s: %w", ap.Addr(), ErrRateLimited)
	}
	return nil
}

// mediaType picks the response encoding: JSON when the request is JSON or
// asks for it, else CBOR.
func mediaType(r *http.Request) string {
	if strings.HasPrefix(r.Header.Get("Content-Type"), wire.JSON) || strings.Contains(r.Header.Get("Accept"), wire.JSON) {
		return wire.JSON
	}
	return wire.CBOR
}

func reply(w http.ResponseWriter, r *http.Request, status int, v any) error {
	mt := mediaType(r)
	b, err := wire.Marshal(mt, v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", mt)
	w.WriteHeader(status)
	w.Write(b) // a client that went away is not an error of the request
	return nil
}

// decode reads a bounded body in its declared encoding.
func (a *API) decode(r *http.Request, v any) error { return decodeBody(r, a.cfg.MaxBody, v) }

func decodeBody(r *http.Request, limit int64, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("%w: body over %d bytes", ErrTooLarge, limit)
		}
		return fmt.Errorf("%w: reading body: %v", ErrBadRequest, err)
	}
	mt := wire.CBOR
	if strings.HasPrefix(r.Header.Get("Content-Type"), wire.JSON) {
		mt = wire.JSON
	}
	return wire.Unmarshal(mt, b, v)
}

// objects decodes a batch of signed objects and charges the source for it.
func (a *API) objects(r *http.Request) ([][]byte, error) {
	var in wire.Objects
	if err := a.decode(r, &in); err != nil {
		return nil, err
	}
	if len(in.Objects) == 0 || len(in.Objects) > a.cfg.MaxBatch {
		return nil, fmt.Errorf("%w: %d objects in one request, want 1..%d", ErrTooLarge, len(in.Objects), a.cfg.MaxBatch)
	}
	if err := a.limitSource(r, len(in.Objects)-1); err != nil {
		return nil, err
	}
	return in.Objects, nil
}

// reader returns who a request is from: the session of its bearer token
// (or token query parameter, for browsers' WebSockets), or anonymous.
// A token that is present but invalid is refused.
func (a *API) reader(r *http.Request) (Caller, error) {
	token := r.URL.Query().Get("token")
	if h := r.Header.Get("Authorization"); h != "" {
		t, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return Caller{}, fmt.Errorf("%w: Authorization is not a bearer token", ErrUnauthenticated)
		}
		token = t
	}
	if token == "" {
		return Caller{}, nil
	}
	return a.svc.Authenticate(token)
}

// readErr turns policy's refusal of an anonymous reader into
// "unauthenticated": the answer is to sign in, not that access is denied.
func readErr(rd Caller, err error) error {
	if rd.Identity.IsZero() && policy.CodeOf(err) == policy.CodeForbidden {
		return fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	return err
}

func pathID(r *http.Request, name string) (policy.ID, error) {
	id, err := policy.ParseID(r.PathValue(name))
	if err != nil {
		return id, fmt.Errorf("%w: %s: %v", ErrBadRequest, name, err)
	}
	return id, nil
}

// page reads the after and limit query parameters (limit default 1,000).
func page(r *http.Request) (after uint64, limit int, err error) {
	q := r.URL.Query()
	if s := q.Get("after"); s != "" {
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("%w: after: %v", ErrBadRequest, err)
		}
	}
	limit = 1000
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil {
			return 0, 0, fmt.Errorf("%w: limit: %v", ErrBadRequest, err)
		}
	}
	return after, limit, storage.CheckPage(limit)
}

func (a *API) info(w http.ResponseWriter, r *http.Request) error {
	_, presign := a.svc.cfg.Blobs.(storage.Presigner)
	return reply(w, r, 200, wire.Info{Node: a.svc.NodeID(), Version: a.cfg.Version, MaxBody: a.cfg.MaxBody, MaxBlob: a.svc.cfg.MaxBlob,
		MaxBatch: a.cfg.MaxBatch, MaxFrame: a.cfg.MaxFrame, MaxPage: storage.MaxPage, PresignBlob: presign})
}

func (a *API) challenge(w http.ResponseWriter, r *http.Request) error {
	c, exp := a.svc.Challenge()
	return reply(w, r, 200, wire.Challenge{Challenge: c, Expires: exp})
}

func (a *API) session(w http.ResponseWriter, r *http.Request) error {
	var in wire.SessionRequest
	if err := a.decode(r, &in); err != nil {
		return err
	}
	token, rd, exp, err := a.svc.Session(in.Proof)
	if err != nil {
		if errors.Is(err, ErrUnauthenticated) || policy.CodeOf(err) == "" {
			return err
		}
		return fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	return reply(w, r, 200, wire.Session{Token: token, Identity: rd.Identity, Device: rd.Device, Expires: exp})
}

func (a *API) publishEvents(w http.ResponseWriter, r *http.Request) error {
	server, err := pathID(r, "server")
	if err != nil {
		return err
	}
	raws, err := a.objects(r)
	if err != nil {
		return err
	}
	res, err := a.svc.PublishEvents(r.Context(), server, raws)
	if err != nil {
		return err
	}
	out := wire.EventResults{Results: make([]wire.EventResult, len(res))}
	for i, e := range res {
		out.Results[i] = wire.EventResult{ID: e.ID, Folded: e.Folded}
		if e.Reason != nil {
			out.Results[i].Reason = a.itemError(e.Reason)
		}
	}
	return reply(w, r, 200, out)
}

func (a *API) events(w http.ResponseWriter, r *http.Request) error {
	server, err := pathID(r, "server")
	if err != nil {
		return err
	}
	rd, err := a.reader(r)
	if err != nil {
		return err
	}
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	evs, err := a.svc.Events(r.Context(), rd, server, after, limit)
	if err != nil {
		return readErr(rd, err)
	}
	out := wire.Events{Events: make([]wire.Event, len(evs)), Next: after, More: len(evs) == limit}
	for i, e := range evs {
		out.Events[i] = wire.Event{Seq: e.Seq, Raw: e.Raw}
		out.Next = e.Seq
	}
	return reply(w, r, 200, out)
}

// itemError converts one object's error for the wire; an internal one is
// logged, as a failed request is, since its details stay off the wire.
func (a *API) itemError(err error) *wire.Error {
	we := wireError(err)
	if we.Code == wire.CodeInternal {
		a.cfg.Logger.Error("hub: object failed", "err", err)
	}
	return we
}

func (a *API) results(posted []Posted) wire.Results {
	out := wire.Results{Results: make([]wire.Result, len(posted))}
	for i, p := range posted {
		if p.Err != nil {
			out.Results[i].Error = a.itemError(p.Err)
		} else if p.Receipt != nil {
			out.Results[i].Receipt = p.Receipt.Raw
		}
	}
	return out
}

func (a *API) postEnvelopes(w http.ResponseWriter, r *http.Request) error {
	raws, err := a.objects(r)
	if err != nil {
		return err
	}
	return reply(w, r, 200, a.results(a.svc.Post(r.Context(), raws)))
}

func (a *API) tombstones(w http.ResponseWriter, r *http.Request) error {
	raws, err := a.objects(r)
	if err != nil {
		return err
	}
	return reply(w, r, 200, a.tombResults(a.svc.Tombstone(r.Context(), raws)))
}

func (a *API) tombResults(errs []error) wire.Results {
	out := wire.Results{Results: make([]wire.Result, len(errs))}
	for i, err := range errs {
		if err != nil {
			out.Results[i].Error = a.itemError(err)
		}
	}
	return out
}

func (a *API) readChannel(w http.ResponseWriter, r *http.Request) error {
	server, err := pathID(r, "server")
	if err != nil {
		return err
	}
	channel, err := pathID(r, "channel")
	if err != nil {
		return err
	}
	rd, err := a.reader(r)
	if err != nil {
		return err
	}
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	envs, err := a.svc.Read(r.Context(), rd, server, channel, after, limit)
	if err != nil {
		return readErr(rd, err)
	}
	out := wire.Envelopes{Envelopes: make([]wire.Envelope, len(envs)), Next: after, More: len(envs) == limit}
	for i, e := range envs {
		out.Envelopes[i] = wire.Envelope{Seq: e.Seq, ID: e.ID, StoredAt: e.StoredAt, Raw: e.Raw, Tombstone: e.Tombstone}
		out.Next = e.Seq
	}
	return reply(w, r, 200, out)
}

func (a *API) envelope(w http.ResponseWriter, r *http.Request) error {
	server, err := pathID(r, "server")
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	rd, err := a.reader(r)
	if err != nil {
		return err
	}
	e, err := a.svc.Envelope(r.Context(), rd, server, id)
	if err != nil {
		return readErr(rd, err)
	}
	return reply(w, r, 200, wire.Envelope{Seq: e.Seq, ID: e.ID, StoredAt: e.StoredAt, Raw: e.Raw, Tombstone: e.Tombstone})
}

func (a *API) reconcile(w http.ResponseWriter, r *http.Request) error {
	server, err := pathID(r, "server")
	if err != nil {
		return err
	}
	channel, err := pathID(r, "channel")
	if err != nil {
		return err
	}
	rd, err := a.reader(r)
	if err != nil {
		return err
	}
	var in wire.Reconcile
	if err := a.decode(r, &in); err != nil {
		return err
	}
	ranges, err := wire.ToRanges(in.Ranges)
	if err != nil {
		return err
	}
	res, err := a.svc.Reconcile(r.Context(), rd, server, channel, ranges)
	if err != nil {
		return readErr(rd, err)
	}
	out := wire.Reconcile{Ranges: wire.FromRanges(res)}
	return reply(w, r, 200, out)
}

func (a *API) blobPath(r *http.Request) (Caller, policy.ID, policy.ID, error) {
	server, err := pathID(r, "server")
	if err != nil {
		return Caller{}, server, server, err
	}
	blob, err := pathID(r, "blob")
	if err != nil {
		return Caller{}, server, blob, err
	}
	rd, err := a.reader(r)
	return rd, server, blob, err
}

func (a *API) putBlob(w http.ResponseWriter, r *http.Request) error {
	rd, server, blob, err := a.blobPath(r)
	if err != nil {
		return err
	}
	if r.ContentLength < 0 {
		return fmt.Errorf("%w: a blob upload needs Content-Length", ErrBadRequest)
	}
	body := http.MaxBytesReader(w, r.Body, r.ContentLength)
	if err := a.svc.PutBlob(r.Context(), rd, server, blob, body, r.ContentLength); err != nil {
		return readErr(rd, err)
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (a *API) getBlob(w http.ResponseWriter, r *http.Request) error {
	rd, server, blob, err := a.blobPath(r)
	if err != nil {
		return err
	}
	body, size, err := a.svc.GetBlob(r.Context(), rd, server, blob)
	if err != nil {
		return readErr(rd, err)
	}
	defer body.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	io.Copy(w, body) // a failure mid-stream shows as a short body
	return nil
}

func (a *API) presign(w http.ResponseWriter, r *http.Request) error {
	rd, server, blob, err := a.blobPath(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	put := q.Get("op") == "put"
	if !put && q.Get("op") != "get" {
		return fmt.Errorf("%w: op must be put or get", ErrBadRequest)
	}
	var size int64
	if put {
		if size, err = strconv.ParseInt(q.Get("size"), 10, 64); err != nil {
			return fmt.Errorf("%w: size: %v", ErrBadRequest, err)
		}
	}
	u, h, err := a.svc.PresignBlob(r.Context(), rd, server, blob, put, size, a.cfg.PresignTTL)
	if err != nil {
		return readErr(rd, err)
	}
	if u == nil {
		return fmt.Errorf("%w: this hub's blob store cannot presign; use the blob endpoint", ErrNoBlobs)
	}
	return reply(w, r, 200, wire.BlobTicket{URL: u.String(), Header: h, Expires: time.Now().Add(a.cfg.PresignTTL).UnixMilli()})
}

// health serves /healthz (the process runs) and /readyz (its store answers).
func health(mux *http.ServeMux, svc *Service) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := svc.Ready(ctx); err != nil {
			writeError(w, http.StatusServiceUnavailable, &wire.Error{Code: wire.CodeUnavailable, Message: err.Error()})
			return
		}
		w.Write([]byte("ready\n"))
	})
}

// Ready reports whether the store answers.
func (s *Service) Ready(ctx context.Context) error {
	if _, err := s.cfg.Store.Tenant(ctx, policy.ID{}); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return nil
}
