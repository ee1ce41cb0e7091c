package main

import (
	"flag"
	"io"
	"log/slog"
	"reflect"
	"strings"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/hub/httpapi"
	"github.com/guildhall/guildhall/internal/daemon"
	"github.com/guildhall/guildhall/storage"
)

// reconfigure reads the configuration again as at start: the file named
// by -config (or GUILDHALL_HUB_CONFIG), then the environment, then the
// same flags.
func reconfigure(args []string, getenv func(string) string) (settings, error) {
	cfg, err := configure(flag.NewFlagSet("hub", flag.ContinueOnError), args, getenv, io.Discard)
	if err != nil || cfg == nil {
		return settings{}, err
	}
	return cfg.resolve(getenv)
}

// live is a running hub's reloadable side: what it runs with now and the
// parts that take new settings while serving.
type live struct {
	cur    settings
	reread func() (settings, error)
	level  *slog.LevelVar
	svc    *hub.Service
	api    *httpapi.API
	conns  *daemon.LimitedListener
	cert   *daemon.Certificate // nil without TLS
	log    *slog.Logger
}

// setting is one configuration key, as reload compares it. Those with
// take change at run time (reload copies them into the running settings);
// the others are logged as needing a restart.
type setting struct {
	name string
	get  func(*settings) any
	take func(cur, next *settings)
}

var settingsCompared = []setting{
	{"log_level", func(s *settings) any { return s.log.Level }, func(c, n *settings) { c.LogLevel, c.log.Level = n.LogLevel, n.log.Level }},
	{"admission.allow", func(s *settings) any { return s.Admission.Allow }, func(c, n *settings) {
		c.Admission.Allow, c.allowed, c.creators = n.Admission.Allow, n.allowed, n.creators
	}},
	{"admission.default_quota", func(s *settings) any { return s.Admission.DefaultQuota }, func(c, n *settings) { c.Admission.DefaultQuota = n.Admission.DefaultQuota }},
	{"limits.source_rate", func(s *settings) any { return s.Limits.SourceRate }, func(c, n *settings) { c.Limits.SourceRate = n.Limits.SourceRate }},
	{"limits.source_burst", func(s *settings) any { return s.Limits.SourceBurst }, func(c, n *settings) { c.Limits.SourceBurst = n.Limits.SourceBurst }},
	{"limits.post_rate", func(s *settings) any { return s.Limits.PostRate }, func(c, n *settings) { c.Limits.PostRate = n.Limits.PostRate }},
	{"limits.post_burst", func(s *settings) any { return s.Limits.PostBurst }, func(c, n *settings) { c.Limits.PostBurst = n.Limits.PostBurst }},
	{"limits.max_sockets", func(s *settings) any { return s.Limits.MaxSockets }, func(c, n *settings) { c.Limits.MaxSockets = n.Limits.MaxSockets }},
	{"limits.sockets_per_source", func(s *settings) any { return s.Limits.SocketsPerSource }, func(c, n *settings) { c.Limits.SocketsPerSource = n.Limits.SocketsPerSource }},
	{"limits.conns_per_source", func(s *settings) any { return s.Limits.ConnsPerSource }, func(c, n *settings) { c.Limits.ConnsPerSource = n.Limits.ConnsPerSource }},
	{"tls.cert_file", func(s *settings) any { return s.TLS }, nil}, // replaced below when TLS stays on
	{"listen", func(s *settings) any { return s.Listen }, nil},
	{"public_url", func(s *settings) any { return s.PublicURL }, nil},
	{"admin", func(s *settings) any { return s.Admin }, nil},
	{"data_dir", func(s *settings) any { return s.DataDir }, nil},
	{"node_key_file", func(s *settings) any { return s.NodeKeyFile }, nil},
	{"storage", func(s *settings) any { return s.Storage }, nil},
	{"admission.mode", func(s *settings) any { return s.admission }, nil},
	{"home", func(s *settings) any { return s.Home }, nil},
	{"turn", func(s *settings) any { return s.turn }, nil}, // the secret read, so that a rotated file is noticed
	{"p2p", func(s *settings) any { return s.P2P }, nil},
	{"log_format", func(s *settings) any { return s.log.JSON }, nil},
	{"limits.max_body", func(s *settings) any { return s.Limits.MaxBody }, nil},
	{"limits.max_batch", func(s *settings) any { return s.Limits.MaxBatch }, nil},
	{"limits.max_frame", func(s *settings) any { return s.Limits.MaxFrame }, nil},
	{"limits.max_blob", func(s *settings) any { return s.Limits.MaxBlob }, nil},
	{"limits.max_servers", func(s *settings) any { return s.Limits.MaxServers }, nil},
	{"limits.queue_len", func(s *settings) any { return s.Limits.QueueLen }, nil},
	{"limits.trusted_proxies", func(s *settings) any { return s.proxies }, nil},
	{"limits.body_timeout", func(s *settings) any { return s.Limits.BodyTimeout }, nil},
	{"limits.coalesce", func(s *settings) any { return s.Limits.Coalesce }, nil},
}

// reload reads the configuration again and applies what can change while
// the hub serves: the log level, the admission allow-list and default
// quota, the source and sender rates, the socket and connection caps, and
// the TLS certificate (read again even when its files kept their names: a
// renewal). A setting that changed but needs a restart is logged at Warn
// and keeps its running value. A configuration that does not load or
// validate, or a certificate that does not load, is refused whole: the
// running settings stay.
func (l *live) reload() {
	next, err := l.reread()
	if err != nil {
		l.log.Error("reload refused; the previous settings stay", "err", err)
		return
	}
	tlsOn := l.cert != nil && next.TLS.CertFile != ""
	if tlsOn {
		if err := l.cert.Load(next.TLS.CertFile, next.TLS.KeyFile); err != nil {
			l.log.Error("reload refused: the TLS certificate does not load; the previous settings stay", "err", err)
			return
		}
	}
	cur := l.cur
	var changed []string
	for _, s := range settingsCompared {
		if reflect.DeepEqual(s.get(&cur), s.get(&next)) {
			continue
		}
		switch {
		case s.take != nil:
			s.take(&cur, &next)
			changed = append(changed, s.name)
		case s.name == "tls.cert_file" && tlsOn:
			cur.TLS = next.TLS
			changed = append(changed, s.name)
		default:
			l.log.Warn("reload: this setting changed but takes effect only after a restart", "setting", s.name)
		}
	}
	l.cur = cur
	l.level.Set(cur.log.Level)
	l.svc.SetLimits(hub.Limits{Allowed: cur.allowed, AllowedCreators: cur.creators, DefaultQuota: storage.Quota(cur.Admission.DefaultQuota),
		PostRate: cur.Limits.PostRate, PostBurst: cur.Limits.PostBurst})
	l.api.SetLimits(httpapi.Limits{SourceRate: cur.Limits.SourceRate, SourceBurst: cur.Limits.SourceBurst,
		MaxSockets: cur.Limits.MaxSockets, SocketsPerSource: cur.Limits.SocketsPerSource})
	l.conns.SetPerSource(cur.Limits.ConnsPerSource)
	reloaded := "log level, admission allow-list and default quota, rates, socket and connection caps"
	if tlsOn {
		reloaded += ", TLS certificate"
	}
	l.log.Info("reloaded the configuration", "reloaded", reloaded, "changed", strings.Join(changed, ","))
}
