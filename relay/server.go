package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"

	"github.com/guildhall/guildhall/internal/ratelimit"
)

// Defaults of the safety limits; Config documents each.
const (
	DefaultUserQuota          = 32
	DefaultTotalQuota         = 10_000
	DefaultBandwidth          = 4 << 20 // bytes per second per allocation and direction
	DefaultAllocationLifetime = 10 * time.Minute
	MaxAllocationLifetime     = time.Hour // RFC 5766 §6.2; pion caps requests at it too
	DefaultPermissionLifetime = 5 * time.Minute
	DefaultChannelLifetime    = 10 * time.Minute
	DefaultChallengeRate      = 20 // 401 answers per second per source address
	DefaultChallengeBurst     = 40
	DefaultAuthFailureRate    = 0.2 // failed authentications per second per source (12 a minute)
	DefaultAuthFailureBurst   = 10
	DefaultConnsPerSource     = 64 // TCP and TLS connections per source address (IPv6: per /64)
	DefaultHandshakeTimeout   = 10 * time.Second
	DefaultAuthTimeout        = 30 * time.Second
)

// Config configures a Server. The server does not own its listeners'
// creation: the binary makes them (several UDP sockets on one port with
// SO_REUSEPORT, TCP, TLS) and the server reads them.
type Config struct {
	// Realm of the long-term credentials; required.
	Realm string
	// Users are static long-term credentials: username -> password.
	Users map[string]string
	// Secrets are TURN REST API shared secrets (coturn's
	// static-auth-secret), newest first; all are accepted, for rotation.
	Secrets []string
	// UDP, TCP and TLS are the listeners clients connect to (TLS ones are
	// already TLS-wrapped). At least one is required.
	UDP      []net.PacketConn
	TCP, TLS []net.Listener
	// RelayIP is the address given to clients as their relayed address (the
	// public address); RelayBind is where relay sockets are bound (default
	// "0.0.0.0"); PortMin..PortMax the relay port range (default
	// 49152..65535).
	RelayIP          net.IP
	RelayBind        string
	PortMin, PortMax uint16
	// Limits can be replaced at run time (Reload).
	Limits Limits
	// Logger; default discards.
	Logger *slog.Logger
	// Now is the clock for REST credential expiry; default time.Now.
	Now func() time.Time
}

// Limits are the relay's reloadable safety settings. Zero values take the
// defaults; a negative quota or bandwidth disables that limit.
type Limits struct {
	// Allow lists peer prefixes exempt from the special-purpose deny list
	// (for example a private network the relay should serve).
	Allow []netip.Prefix
	// UserQuota bounds allocations per user (REST: per user part);
	// TotalQuota bounds them in all.
	UserQuota, TotalQuota int
	// Bandwidth caps each allocation, in bytes per second per direction.
	Bandwidth int64
	// Lifetimes: the default allocation lifetime (clients may ask for up to
	// MaxAllocationLifetime), permission and channel binding lifetimes.
	AllocationLifetime, PermissionLifetime, ChannelLifetime time.Duration
	// ChallengeRate and ChallengeBurst bound 401 answers per source address.
	ChallengeRate  float64
	ChallengeBurst int
	// AuthFailureRate and AuthFailureBurst bound failed authentications
	// (wrong password, unknown user, expired credential) per source
	// address (IPv6: per /64): over them every request of that source is
	// refused unchecked until the rate allows one again. Read at start.
	AuthFailureRate  float64
	AuthFailureBurst int
	// ConnsPerSource bounds the TCP and TLS connections of one source
	// address (IPv6: one /64); -1: off. HandshakeTimeout bounds a TLS
	// handshake; AuthTimeout is how long a TCP or TLS connection may stay
	// without a request that authenticates (after one, the allocation's
	// lifetime governs it).
	ConnsPerSource                int
	HandshakeTimeout, AuthTimeout time.Duration
}

func (l *Limits) defaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.UserQuota, DefaultUserQuota)
	def(&l.TotalQuota, DefaultTotalQuota)
	def(&l.ChallengeBurst, DefaultChallengeBurst)
	def(&l.AuthFailureBurst, DefaultAuthFailureBurst)
	def(&l.ConnsPerSource, DefaultConnsPerSource)
	if l.AuthFailureRate == 0 {
		l.AuthFailureRate = DefaultAuthFailureRate
	}
	if l.Bandwidth == 0 {
		l.Bandwidth = DefaultBandwidth
	}
	if l.ChallengeRate == 0 {
		l.ChallengeRate = DefaultChallengeRate
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&l.AllocationLifetime, DefaultAllocationLifetime}, {&l.PermissionLifetime, DefaultPermissionLifetime}, {&l.ChannelLifetime, DefaultChannelLifetime},
		{&l.HandshakeTimeout, DefaultHandshakeTimeout}, {&l.AuthTimeout, DefaultAuthTimeout}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if l.AllocationLifetime > MaxAllocationLifetime || l.PermissionLifetime > MaxAllocationLifetime || l.ChannelLifetime > MaxAllocationLifetime {
		return fmt.Errorf("relay: lifetimes are capped at %v", MaxAllocationLifetime)
	}
	return nil
}

// limits is Limits in force, as the handlers read it.
type limits struct {
	filter     peerFilter
	userQuota  int
	totalQuota int
	bandwidth  int64

	connsPerSource                int
	handshakeTimeout, authTimeout time.Duration
}

// Server is a running TURN server.
type Server struct {
	cfg        Config
	turn       []*turn.Server // UDP, streams (TCP and TLS)
	creds      atomic.Pointer[credentials]
	limits     atomic.Pointer[limits]
	chooser    keyChooser
	refusals   refusals // requests whose credentials were refused, answered 401
	challenges *ratelimit.Limiter[netip.Addr]
	streamKeys sync.Map // TCP client address -> the key its requests were authenticated with
	metrics    *Metrics
	draining   atomic.Bool
	self       map[netip.Addr]bool
	own        atomic.Pointer[ownListeners] // the relay's own listeners: never peers
	bindIP     net.IP                       // RelayBind parsed: where TCP connects to peers are dialled from
	sources    sourceCounts                 // TCP and TLS streams open per source
	streams    sync.Map                     // TCP client address -> *streamConn
	authFails  *ratelimit.Limiter[netip.Prefix]
	holds      portHolds // ports reserved by EVEN-PORT, held bound

	mu      sync.Mutex           // guards perUser, total and pending
	perUser map[string]int       // live and admitted allocations per user ID
	total   int                  // live and admitted allocations
	pending map[string]admission // admitted by quota, not yet created: client transport address -> admission
}

// ErrNoCredentials refuses to start a relay anyone could use.
var ErrNoCredentials = errors.New("relay: no users and no REST secrets configured: a relay without credentials would be open to anyone")

// New starts a server reading its listeners.
func New(cfg Config) (*Server, error) {
	if cfg.Realm == "" {
		return nil, errors.New("relay: Realm is required")
	}
	if len(cfg.Users) == 0 && len(cfg.Secrets) == 0 {
		return nil, ErrNoCredentials
	}
	if len(cfg.UDP)+len(cfg.TCP)+len(cfg.TLS) == 0 {
		return nil, errors.New("relay: no listeners")
	}
	if cfg.RelayIP == nil {
		return nil, errors.New("relay: RelayIP (the public address) is required")
	}
	if cfg.RelayBind == "" {
		cfg.RelayBind = "0.0.0.0"
	}
	if cfg.PortMin == 0 {
		cfg.PortMin, cfg.PortMax = 49152, 65535
	}
	if cfg.PortMin > cfg.PortMax {
		return nil, errors.New("relay: PortMin above PortMax")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.Limits.defaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, metrics: newMetrics(), perUser: map[string]int{}, pending: map[string]admission{}, self: map[netip.Addr]bool{}}
	s.chooser.keys = map[string][]byte{}
	if a, ok := netip.AddrFromSlice(cfg.RelayIP); ok && !a.Unmap().IsUnspecified() {
		s.self[a.Unmap()] = true
	}
	s.setCredentials(cfg.Realm, cfg.Users, cfg.Secrets)
	s.setLimits(cfg.Limits)
	s.challenges = ratelimit.New[netip.Addr](cfg.Limits.ChallengeRate, cfg.Limits.ChallengeBurst, 1<<16)
	s.initOwn()
	s.authFails = ratelimit.New[netip.Prefix](cfg.Limits.AuthFailureRate, cfg.Limits.AuthFailureBurst, 1<<16)

	gen := func() *relayGen {
		return &relayGen{s: s, inner: &turn.RelayAddressGeneratorPortRange{RelayAddress: cfg.RelayIP, Address: cfg.RelayBind,
			MinPort: cfg.PortMin, MaxPort: cfg.PortMax, MaxRetries: 20}}
	}
	var tc turn.ServerConfig
	tc.Realm = cfg.Realm
	tc.AuthHandler = s.authenticate
	tc.QuotaHandler = s.quota
	tc.EventHandler = turn.EventHandler{
		OnAuth:              s.onAuth,
		OnAllocationCreated: s.onCreated,
		OnAllocationDeleted: s.onDeleted,
	}
	tc.AllocationLifetime = cfg.Limits.AllocationLifetime
	tc.PermissionTimeout = cfg.Limits.PermissionLifetime
	tc.ChannelBindTimeout = cfg.Limits.ChannelLifetime
	tc.LoggerFactory = logging.NewDefaultLoggerFactory()
	tc.LoggerFactory.(*logging.DefaultLoggerFactory).DefaultLogLevel = logging.LogLevelError
	// UDP and streams are two pion servers: pion reads every connection
	// into a buffer of InboundMTU bytes, which for UDP must hold any
	// datagram, and would cost 64 KiB for each TCP connection.
	udp, streams := tc, tc
	// One pion PacketConn, so one allocation state, per listening address
	// whatever the number of sockets bound to it.
	for _, socks := range groupByAddress(cfg.UDP) {
		udp.PacketConnConfigs = append(udp.PacketConnConfigs, turn.PacketConnConfig{PacketConn: s.newListenConn(socks),
			RelayAddressGenerator: gen(), PermissionHandler: s.permit})
	}
	udp.InboundMTU = maxDatagram
	streams.InboundMTU = streamMTU
	for _, l := range append(append([]net.Listener{}, cfg.TCP...), cfg.TLS...) {
		streams.ListenerConfigs = append(streams.ListenerConfigs, turn.ListenerConfig{Listener: &listener{Listener: l, s: s},
			RelayAddressGenerator: gen(), PermissionHandler: s.permit})
	}
	for _, c := range []turn.ServerConfig{udp, streams} {
		if len(c.PacketConnConfigs)+len(c.ListenerConfigs) == 0 {
			continue
		}
		ts, err := turn.NewServer(c)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("relay: %w", err)
		}
		s.turn = append(s.turn, ts)
	}
	return s, nil
}

func (s *Server) now() time.Time { return s.cfg.Now() }

func (s *Server) setCredentials(realm string, users map[string]string, secrets []string) {
	c := &credentials{realm: realm, users: map[string][]byte{}, secrets: append([]string(nil), secrets...)}
	for u, p := range users {
		c.users[u] = turn.GenerateAuthKey(u, realm, p)
	}
	s.creds.Store(c)
}

func (s *Server) setLimits(l Limits) {
	s.limits.Store(&limits{filter: peerFilter{allow: l.Allow, self: s.self}, userQuota: l.UserQuota, totalQuota: l.TotalQuota, bandwidth: l.Bandwidth,
		connsPerSource: l.ConnsPerSource, handshakeTimeout: l.HandshakeTimeout, authTimeout: l.AuthTimeout})
}

// Reload replaces credentials and limits (lifetimes and listeners stay as
// started; the per-source challenge rate too).
func (s *Server) Reload(users map[string]string, secrets []string, l Limits) error {
	if len(users) == 0 && len(secrets) == 0 {
		return ErrNoCredentials
	}
	if err := l.defaults(); err != nil {
		return err
	}
	s.setCredentials(s.cfg.Realm, users, secrets)
	s.setLimits(l)
	return nil
}

// permit is the permission handler: CreatePermission, ChannelBind and TCP
// Connect all pass through it.
func (s *Server) permit(_ net.Addr, peer net.IP) bool {
	if s.limits.Load().filter.allowed(peer) {
		return true
	}
	s.metrics.deniedPeers.Inc()
	return false
}

// Protect adds listeners of the relay's process (metrics, libp2p) to the
// addresses no client may reach as a peer; the TURN listeners are in from
// the start.
func (s *Server) Protect(addrs ...net.Addr) { s.own.Store(s.own.Load().with(addrs...)) }

// Allocations returns how many allocations are live.
func (s *Server) Allocations() int {
	n := 0
	for _, t := range s.turn {
		n += t.AllocationCount()
	}
	return n
}

// Drain refuses new allocations; existing ones continue until they end or
// the server is closed.
func (s *Server) Drain() { s.draining.Store(true) }

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// Close stops the server and ends every allocation.
func (s *Server) Close() error {
	var errs []error
	for _, t := range s.turn {
		errs = append(errs, t.Close())
	}
	s.holds.closeAll()
	return errors.Join(errs...)
}

// Metrics returns the server's collectors, for the binary to register.
func (s *Server) Metrics() *Metrics { return s.metrics }
