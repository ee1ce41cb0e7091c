package daemon

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// SourceLimit caps the connections one source address holds open on a
// listener, so that one host cannot take every file descriptor or every
// socket: a connection over the cap is closed as soon as it is accepted,
// before anything is read from it. An IPv6 source is its /64. Sources in
// Exempt (the reverse proxies in front of a daemon) are not capped.
type SourceLimit struct {
	PerSource int            // connections one source may hold; <= 0: no cap
	Exempt    []netip.Prefix // sources never capped
	Refused   prometheus.Counter
}

// Listener wraps l with the limit.
func (sl SourceLimit) Listener(l net.Listener) net.Listener {
	if sl.PerSource <= 0 {
		return l
	}
	return sl.Limited(l)
}

// Limited wraps l with the limit, even one of none, so that the cap can be
// changed later (SetPerSource) while l accepts.
func (sl SourceLimit) Limited(l net.Listener) *LimitedListener {
	ll := &LimitedListener{Listener: l, limit: sl, open: map[netip.Addr]int{}}
	ll.perSource.Store(int64(sl.PerSource))
	return ll
}

// LimitedListener is a listener under a SourceLimit whose cap can change.
type LimitedListener struct {
	net.Listener
	limit     SourceLimit
	perSource atomic.Int64
	mu        sync.Mutex
	open      map[netip.Addr]int // guarded by mu; connections held per source
}

// SetPerSource changes the cap (<= 0: none) for connections accepted from
// now on; connections open already stay.
func (l *LimitedListener) SetPerSource(n int) { l.perSource.Store(int64(n)) }

func (l *LimitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src, ok := sourceOf(c.RemoteAddr())
		if !ok || l.exempt(src) {
			return c, nil
		}
		l.mu.Lock()
		limit := l.perSource.Load()
		full := limit > 0 && int64(l.open[src]) >= limit
		if !full {
			l.open[src]++
		}
		l.mu.Unlock()
		if full {
			c.Close()
			if l.limit.Refused != nil {
				l.limit.Refused.Inc()
			}
			continue
		}
		return &countedConn{Conn: c, release: func() { l.release(src) }}, nil
	}
}

func (l *LimitedListener) release(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[src]--; l.open[src] <= 0 {
		delete(l.open, src)
	}
}

func (l *LimitedListener) exempt(a netip.Addr) bool {
	for _, p := range l.limit.Exempt {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// countedConn gives its source's place back once, when closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func sourceOf(a net.Addr) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	addr := ap.Addr().Unmap()
	if addr.Is6() {
		addr = netip.PrefixFrom(addr, 64).Masked().Addr()
	}
	return addr, true
}
