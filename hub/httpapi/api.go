// Package httpapi serves a hub.Service over HTTP and WebSocket
// (docs/API.md): the public API, the operator's admin API, the mapping of
// the service's Go errors to wire codes and HTTP statuses, and the HTTP
// metrics. It decodes requests with package wire's limited decoder, calls
// the service's exported methods, and encodes their answers.
//
// It never decides authority (every accept, refuse and read rule is the
// service's, which asks policy) and never touches storage directly: what it
// knows of the hub is what hub.Service exports.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/internal/ratelimit"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/wire"
)

// Config bounds the public API. Zero values take the documented defaults.
type Config struct {
	// Version is reported by /v1/info.
	Version string
	// PublicURL is reported by /v1/info: where members reach the hub.
	PublicURL string
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
	// TrustedProxies are the reverse proxies (load balancers) in front of
	// the hub: a request from one of them is charged to the address it
	// names last in X-Forwarded-For that is not itself a trusted proxy.
	// Requests from anywhere else are charged to their connection's address
	// and their X-Forwarded-For is ignored. Default: none.
	TrustedProxies []netip.Prefix
	// MaxSockets bounds open WebSockets; default 20,000.
	MaxSockets int
	// SocketsPerSource bounds the WebSockets one source (see
	// TrustedProxies; an IPv6 /64) holds open, so that one address cannot
	// take every MaxSockets place; default 64, negative for no bound.
	SocketsPerSource int
	// MaxInflight bounds concurrent requests of one WebSocket; default 64.
	MaxInflight int
	// BodyTimeout bounds reading a request's body, plus the time its
	// declared length takes at MinUploadRate (bytes/s); defaults 30 s and
	// 64 KiB/s. Slow bodies cannot hold connections open.
	BodyTimeout   time.Duration
	MinUploadRate int64
	// IdleTimeout closes a WebSocket that follows no topic and sends
	// nothing for that long; default 2 minutes.
	IdleTimeout time.Duration
	// WriteTimeout bounds one write to a WebSocket; default 10 s.
	WriteTimeout time.Duration
	// Recheck is how often a subscription's read permission is checked
	// again, a backstop: a state change of a server makes its subscribers
	// check at once, and before anything stored after it is sent to them
	// (wscheck.go); default 10 s.
	Recheck time.Duration
	// Coalesce is the longest a pushed message waits so that one write to
	// a subscriber carries several; answers are never delayed. Default 25 ms.
	Coalesce time.Duration
	// PresignTTL is the lifetime of presigned blob URLs; default 15 min.
	PresignTTL time.Duration
	// TURN configures GET /v1/turn/credentials (turn.go); default off.
	TURN TURN
	// Logger; default discards.
	Logger *slog.Logger
}

func (c *Config) defaults() {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxBody, 4<<20)
	def(&c.MinUploadRate, 64<<10)
	def(&c.MaxFrame, 4<<20)
	for _, p := range []struct {
		v *int
		d int
	}{{&c.MaxBatch, 1000}, {&c.SourceBurst, 2000}, {&c.MaxSockets, 20000}, {&c.MaxInflight, 64}} {
		if *p.v <= 0 {
			*p.v = p.d
		}
	}
	if c.SocketsPerSource == 0 {
		c.SocketsPerSource = 64
	}
	if c.SourceRate == 0 {
		c.SourceRate = 500
	}
	for _, p := range []struct {
		v *time.Duration
		d time.Duration
	}{{&c.WriteTimeout, 10 * time.Second}, {&c.BodyTimeout, 30 * time.Second}, {&c.IdleTimeout, 2 * time.Minute}, {&c.Recheck, 10 * time.Second}, {&c.PresignTTL, 15 * time.Minute}, {&c.Coalesce, 25 * time.Millisecond}} {
		if *p.v <= 0 {
			*p.v = p.d
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// API serves a hub.Service over HTTP and WebSocket (docs/API.md).
type API struct {
	svc     *hub.Service
	cfg     Config
	metrics *Metrics
	sources atomic.Pointer[ratelimit.Limiter[netip.Addr]] // nil when unlimited; replaced by SetLimits
	mux     *http.ServeMux
	gens    *stateGens // state changes, for subscriptions' read checks

	mu       sync.Mutex // guards sockets, open, bySource and closing
	sockets  map[*socket]struct{}
	open     int                // WebSockets open or being accepted
	bySource map[netip.Addr]int // of open, those of each source (only sources with some)
	closing  bool
	work     sync.WaitGroup // requests of sockets in flight
}

// New returns the public API of svc.
func New(svc *hub.Service, cfg Config) *API {
	cfg.defaults()
	a := &API{svc: svc, cfg: cfg, metrics: newMetrics(), mux: http.NewServeMux(), sockets: map[*socket]struct{}{},
		bySource: map[netip.Addr]int{}, gens: newStateGens()}
	svc.OnStateChange(a.gens.changed)
	if cfg.SourceRate > 0 {
		a.sources.Store(ratelimit.New[netip.Addr](cfg.SourceRate, cfg.SourceBurst, 1<<16))
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
	a.route("GET /v1/servers/{server}/channels/{channel}/keys", a.keys)
	a.route("POST /v1/tombstones", a.tombstones)
	a.route("POST /v1/servers/{server}/reports", a.report)
	a.route("PUT /v1/servers/{server}/blobs/{blob}", a.putBlob)
	a.route("GET /v1/servers/{server}/blobs/{blob}", a.getBlob)
	a.route("POST /v1/servers/{server}/blobs/{blob}/presign", a.presign)
	a.route("GET /v1/turn/credentials", a.turnCredentials)
	a.route("GET /v1/ws", a.websocket)
	health(a.mux, svc)
	return a
}

// Handler returns the API's HTTP handler.
func (a *API) Handler() http.Handler { return a.mux }

// Metrics returns the API's collectors, for the binary to register.
func (a *API) Metrics() *Metrics { return a.metrics }

// handlerFunc is an API handler: it writes its success itself and returns
// an error, which the wrapper writes as {code, message}.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (a *API) route(pattern string, h handlerFunc) {
	name := pattern[strings.IndexByte(pattern, ' ')+1:]
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if name != "/v1/ws" {
			// A body that trickles in is cut off: BodyTimeout, plus the
			// time a declared length takes at MinUploadRate.
			d := a.cfg.BodyTimeout
			if r.ContentLength > 0 {
				d += time.Duration(float64(r.ContentLength) / float64(a.cfg.MinUploadRate) * float64(time.Second))
			}
			http.NewResponseController(w).SetReadDeadline(start.Add(d)) // unsupported writers (tests) keep none
		}
		err := a.limitSource(r, 1)
		if err == nil {
			err = h(w, r)
		}
		status := 200
		if err != nil {
			we := wireErrorAt(err, r.Host)
			status = wire.Status(we.Code)
			switch we.Code {
			case wire.CodeQuotaExceeded, wire.CodeSuspended: // the member is told in words; the details are here
				a.cfg.Logger.Info("hub: write refused", "route", name, "code", we.Code, "err", err)
			case wire.CodeInternal:
				a.cfg.Logger.Error("hub: request failed", "route", name, "err", err)
			case wire.CodeUnavailable: // the client is told only to retry: the cause is here
				a.cfg.Logger.Warn("hub: storage unavailable", "route", name, "err", err)
			}
			writeError(w, status, we)
		}
		if name != "/v1/ws" || err != nil { // a WebSocket's lifetime is not a request's latency
			a.metrics.requests.WithLabelValues(name, strconv.Itoa(status/100)+"xx").Observe(time.Since(start).Seconds())
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
	sources := a.sources.Load()
	if sources == nil {
		return nil
	}
	src, ok := a.source(r)
	if !ok {
		return nil // not an IP transport (tests over pipes)
	}
	if !sources.AllowN(src, n) {
		a.metrics.rateLimited.WithLabelValues("source").Inc()
		return fmt.Errorf("source %s: %w", src, hub.ErrRateLimited)
	}
	return nil
}

// source is what a request is charged to: its client's address (through
// trusted proxies, see Config.TrustedProxies), an IPv6 address as its /64,
// since one host is usually given a whole /64.
func (a *API) source(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	addr := ap.Addr().Unmap()
	if a.trusted(addr) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a malformed entry: charge the last good one
			}
			addr = hop.Unmap()
			if !a.trusted(addr) {
				break
			}
		}
	}
	if addr.Is6() {
		addr = netip.PrefixFrom(addr, 64).Masked().Addr()
	}
	return addr, true
}

func (a *API) trusted(addr netip.Addr) bool {
	for _, p := range a.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// mediaType picks the response encoding: what Accept names first of JSON
// and CBOR; without either, CBOR when the request's body is CBOR, else JSON
// (curl, a browser, a person reading). The reference client sends CBOR
// bodies (and Content-Type: application/cbor on every request), so it
// stays on CBOR.
func mediaType(r *http.Request) string {
	for _, part := range strings.Split(strings.Join(r.Header.Values("Accept"), ","), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && (mt == wire.JSON || mt == wire.CBOR) {
			return mt
		}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == wire.CBOR {
		return wire.CBOR
	}
	return wire.JSON
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
			return fmt.Errorf("%w: body over %d bytes", hub.ErrTooLarge, limit)
		}
		return fmt.Errorf("%w: reading body: %v", hub.ErrBadRequest, err)
	}
	mt, err := bodyType(r)
	if err != nil {
		return err
	}
	return wire.Unmarshal(mt, b, v)
}

// bodyType returns a message body's encoding from its Content-Type, which
// must name one: a body a web page can send cross-origin without asking
// (text/plain, a form) is refused, so no page can write to a hub on the
// visitor's loopback (a body with no Content-Type is one of those too).
func bodyType(r *http.Request) (string, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case err == nil && mt == wire.CBOR:
		return wire.CBOR, nil
	case err == nil && mt == wire.JSON:
		return wire.JSON, nil
	}
	return "", fmt.Errorf("%w: Content-Type %q: want %s or %s", hub.ErrBadRequest, ct, wire.CBOR, wire.JSON)
}

// objects decodes a batch of signed objects and charges the source for it.
func (a *API) objects(r *http.Request) ([][]byte, error) {
	var in wire.Objects
	if err := a.decode(r, &in); err != nil {
		return nil, err
	}
	if len(in.Objects) == 0 || len(in.Objects) > a.cfg.MaxBatch {
		return nil, fmt.Errorf("%w: %d objects in one request, want 1..%d", hub.ErrTooLarge, len(in.Objects), a.cfg.MaxBatch)
	}
	if err := a.limitSource(r, len(in.Objects)-1); err != nil {
		return nil, err
	}
	return in.Objects, nil
}

// caller returns who a request is from: the session of its bearer token
// (or token query parameter, for browsers' WebSockets), or anonymous.
// A token that is present but invalid is refused.
func (a *API) caller(r *http.Request) (hub.Caller, error) {
	var token string
	if r.URL.Path == "/v1/ws" { // browsers cannot set headers on a WebSocket; elsewhere a URL is no place for a secret
		token = r.URL.Query().Get("token")
	}
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Invite "); ok {
			inv, err := policy.DecodeInviteToken(t)
			if err != nil {
				return hub.Caller{}, fmt.Errorf("%w: invite: %v", hub.ErrUnauthenticated, err)
			}
			return hub.Caller{Invite: inv}, nil
		}
		t, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return hub.Caller{}, fmt.Errorf("%w: Authorization is neither a bearer token nor an invite", hub.ErrUnauthenticated)
		}
		token = t
	}
	if token == "" {
		return hub.Caller{}, nil
	}
	return a.svc.Authenticate(token)
}

// readErr answers a refused read (or upload). An anonymous caller is told
// to sign in, not that access is denied. And unless the server's history is
// public, it is told so before anything that would say what exists: a
// server this hub does not host, a channel or an envelope that is not there,
// and a members-only server all get the same answer, apart from the server
// ID it echoes, so that a stranger cannot probe for them. Public history
// keeps its precise answers: what exists there is public already. A
// newcomer holding an invite gets the invite rule's answers.
func (a *API) readErr(ctx context.Context, rd hub.Caller, server policy.ID, err error) error {
	if !rd.Identity.IsZero() {
		return err
	}
	switch Code(err) {
	case string(policy.CodeForbidden):
	case wire.CodeNotHosted, string(policy.CodeUnknownChannel), wire.CodeNotFound:
		if rd.Invite != nil || a.svc.MayRead(ctx, server, policy.ID{}, hub.Caller{}) == nil {
			return err
		}
	default:
		return err
	}
	return fmt.Errorf("%w: server %s: this needs the session of a member (sign in)", hub.ErrUnauthenticated, server)
}

func pathID(r *http.Request, name string) (policy.ID, error) {
	id, err := policy.ParseID(r.PathValue(name))
	if err != nil {
		return id, fmt.Errorf("%w: %s: %v", hub.ErrBadRequest, name, err)
	}
	return id, nil
}

// page reads the after and limit query parameters (limit default 1,000).
func page(r *http.Request) (after uint64, limit int, err error) {
	q := r.URL.Query()
	if s := q.Get("after"); s != "" {
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("%w: after: %v", hub.ErrBadRequest, err)
		}
	}
	limit = 1000
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil {
			return 0, 0, fmt.Errorf("%w: limit: %v", hub.ErrBadRequest, err)
		}
	}
	return after, limit, storage.CheckPage(limit)
}

// health serves /healthz (the process runs) and /readyz (its store answers).
func health(mux *http.ServeMux, svc *hub.Service) {
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
