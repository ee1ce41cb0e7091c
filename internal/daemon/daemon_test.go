package daemon

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func write(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return p
}

func TestLoadYAML(t *testing.T) {
	type inner struct {
		Port int `yaml:"port"`
	}
	type conf struct {
		Name  string `yaml:"name"`
		Inner inner  `yaml:"inner"`
	}
	for _, tc := range []struct {
		name, yaml string
		want       conf
		err        string // a substring of the error; empty: none
	}{
		{"known keys", "name: a\ninner:\n  port: 7\n", conf{Name: "a", Inner: inner{Port: 7}}, ""},
		{"an unknown key", "name: a\nnmae: b\n", conf{}, "nmae"},
		{"an unknown nested key", "inner:\n  prot: 7\n", conf{}, "prot"},
		{"a wrong type", "inner:\n  port: seven\n", conf{}, "seven"},
		{"not YAML", "name: [\n", conf{}, "hub.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got conf
			err := LoadYAML(write(t, "hub.yaml", tc.yaml, 0o600), &got)
			if tc.err == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one naming %q", err, tc.err)
			}
		})
	}
	if err := LoadYAML(filepath.Join(t.TempDir(), "missing.yaml"), new(conf)); !os.IsNotExist(err) {
		t.Fatalf("a missing file: %v", err)
	}
}

func TestReadSecret(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		secret        string
		lines         []string
		refused       bool
	}{
		{"owner only", "  s3cr3t\n", 0o600, "s3cr3t", []string{"s3cr3t"}, false},
		{"owner and group", "one\n\n# the old one\ntwo\n", 0o640, "one\n\n# the old one\ntwo", []string{"one", "two"}, false},
		{"read-only", " x ", 0o400, "x", []string{"x"}, false},
		{"world-readable", "s3cr3t\n", 0o644, "", nil, true},
		{"world-writable", "s3cr3t\n", 0o602, "", nil, true},
		{"everyone", "s3cr3t\n", 0o777, "", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, "secret", tc.content, tc.mode)
			s, err := ReadSecret(p)
			lines, lerr := ReadSecretLines(p)
			if tc.refused {
				if err == nil || lerr == nil || !strings.Contains(err.Error(), "readable by others") {
					t.Fatalf("a %o file was read: %q %v, %q %v", tc.mode, s, err, lines, lerr)
				}
				return
			}
			if err != nil || lerr != nil || s != tc.secret || !reflect.DeepEqual(lines, tc.lines) {
				t.Fatalf("got %q %v, %q %v; want %q, %q", s, err, lines, lerr, tc.secret, tc.lines)
			}
		})
	}
	if _, err := ReadSecret(filepath.Join(t.TempDir(), "missing")); !os.IsNotExist(err) {
		t.Fatalf("a missing file: %v", err)
	}
}

func TestNewLogger(t *testing.T) {
	for _, tc := range []struct {
		level   string
		json    bool
		want    slog.Level
		refused bool
	}{
		{"", false, slog.LevelInfo, false},
		{"debug", false, slog.LevelDebug, false},
		{"info", true, slog.LevelInfo, false},
		{"warn", false, slog.LevelWarn, false},
		{"error", true, slog.LevelError, false},
		{"verbose", false, 0, true},
		{"INFO", false, 0, true},
		{"warn ", false, 0, true},
		{"info+2", false, 0, true},
	} {
		t.Run(tc.level, func(t *testing.T) {
			level, err := ParseLevel(tc.level)
			if tc.refused {
				if err == nil || !strings.Contains(err.Error(), "log_level") {
					t.Fatalf("level %q accepted: %v", tc.level, err)
				}
				return
			}
			if err != nil || level != tc.want {
				t.Fatalf("level %q parsed as %v, %v", tc.level, level, err)
			}
			var buf bytes.Buffer
			log := NewLogger(&buf, LogConfig{Level: level, JSON: tc.json})
			ctx := context.Background()
			if !log.Enabled(ctx, tc.want) || log.Enabled(ctx, tc.want-1) {
				t.Fatalf("level %q does not log from %v exactly", tc.level, tc.want)
			}
			log.Log(ctx, tc.want, "hello")
			if json := strings.HasPrefix(buf.String(), "{"); json != tc.json || !strings.Contains(buf.String(), "hello") {
				t.Fatalf("JSON %v wrote %q", tc.json, buf.String())
			}
		})
	}
}

func TestAdminMux(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "guildhall_test_total", Help: "a test counter"})
	c.Add(3)
	var draining atomic.Bool
	srv := httptest.NewServer(AdminMux(Registry(c), draining.Load))
	defer srv.Close()
	defer func() {
		draining.Store(true)
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "draining") {
			t.Fatalf("healthz while draining: %d %q, want 503 draining", resp.StatusCode, b)
		}
	}()
	for _, tc := range []struct {
		method, path string
		status       int
		body         string // a substring
	}{
		{"GET", "/metrics", 200, "guildhall_test_total 3"},
		{"GET", "/metrics", 200, "go_goroutines"},
		{"GET", "/metrics", 200, "process_"},
		{"GET", "/healthz", 200, "ok"},
		{"GET", "/debug/pprof/", 200, "goroutine"},
		{"GET", "/debug/pprof/heap?debug=1", 200, "heap profile"},
		{"POST", "/healthz", http.StatusMethodNotAllowed, ""},
		{"GET", "/", 404, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.body) {
				t.Fatalf("%d %.200q, want %d with %q", resp.StatusCode, b, tc.status, tc.body)
			}
		})
	}
}

func TestCommonFlags(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer down.Close()
	for _, tc := range []struct {
		name   string
		args   []string
		done   bool
		failed bool
		stdout string
	}{
		{"neither", nil, false, false, ""},
		{"version", []string{"-version"}, true, false, "hub v1.2.3\n"},
		{"healthy", []string{"-healthcheck", up.URL}, true, false, ""},
		{"unhealthy", []string{"-healthcheck", down.URL}, true, true, ""},
		{"the probe wins", []string{"-version", "-healthcheck", up.URL}, true, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fl := flag.NewFlagSet("hub", flag.ContinueOnError)
			c := AddCommon(fl)
			if err := fl.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			done, err := c.Handle("hub", "v1.2.3", &out)
			if done != tc.done || (err != nil) != tc.failed || out.String() != tc.stdout {
				t.Fatalf("done %v, err %v, stdout %q; want %v, failed %v, %q", done, err, out.String(), tc.done, tc.failed, tc.stdout)
			}
		})
	}
}
