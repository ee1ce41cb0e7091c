package check

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// names returns the metric names a PromQL expression selects.
func names(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("%q: %v", expr, err)
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.Name)
		}
		return nil
	})
	return out
}

// used returns every metric the alert rules and dashboards use.
func used(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	groups, errs := rulefmt.ParseFile(filepath.Join(root, "deploy/prometheus/alerts.yml"), false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("alert rules: %v", errs)
	}
	rules := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			rules++
			for _, n := range names(t, r.Expr) {
				out[n] = "alert " + r.Alert
			}
		}
	}
	if rules < 6 {
		t.Fatalf("%d alert rules", rules)
	}
	dashboards, _ := filepath.Glob(filepath.Join(root, "deploy/grafana/dashboards/*.json"))
	if len(dashboards) < 2 {
		t.Fatalf("dashboards: %v", dashboards)
	}
	for _, d := range dashboards {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		var dash struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(b, &dash); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		for _, p := range dash.Panels {
			for _, tg := range p.Targets {
				for _, n := range names(t, tg.Expr) {
					out[n] = filepath.Base(d) + ": " + p.Title
				}
			}
		}
	}
	return out
}

// start builds and runs a binary, returning the addresses it prints
// (api, admin, metrics) by name, once the last of want is printed.
func start(t *testing.T, cmd string, want string, args ...string) map[string]string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), cmd)
	b := exec.Command("go", "build", "-o", bin, "./cmd/"+cmd)
	b.Dir = root
	if o, err := b.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", cmd, err, o)
	}
	c := exec.Command(bin, args...)
	c.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME=")
	out, _ := c.StdoutPipe()
	c.Stderr = io.Discard
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	sc := bufio.NewScanner(out)
	re := regexp.MustCompile(`^(\w+)\s+(http://\S+)`)
	addrs := map[string]string{}
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			addrs[m[1]] = strings.TrimSuffix(m[2], "/metrics")
			if m[1] == want {
				go io.Copy(io.Discard, out)
				return addrs
			}
		}
	}
	t.Fatalf("%s did not report %s", cmd, want)
	return nil
}

// exported scrapes /metrics and returns the family names, histogram and
// summary families under their series names too.
func exported(t *testing.T, base string) map[string]bool {
	t.Helper()
	var resp *http.Response
	var err error
	for range 50 {
		if resp, err = http.Get(base + "/metrics"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]bool{"up": true} // Prometheus adds it
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = true
			if f[3] == "histogram" || f[3] == "summary" {
				for _, s := range []string{"_bucket", "_count", "_sum"} {
					out[f[2]+s] = true
				}
			}
		}
	}
	return out
}

// Every metric the alert rules and dashboards use is one the binaries
// export (read from a started hub's and relay's live registries).
func TestMetricNames(t *testing.T) {
	want := used(t)
	hub := start(t, "hub", "admin", "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "relay.yaml")
	os.WriteFile(cfg, []byte("external_ip: 127.0.0.2\nlisten: {udp: 127.0.0.1:0}\nmetrics: {listen: 127.0.0.1:0}\nauth: {secrets: [check]}\n"), 0o600)
	relay := start(t, "relay", "metrics", "-config", cfg)
	// The request histogram appears with the first request: make one.
	if resp, err := http.Get(hub["api"] + "/v1/info"); err == nil {
		resp.Body.Close()
	}
	have := exported(t, hub["admin"])
	for k := range exported(t, relay["metrics"]) {
		have[k] = true
	}
	var missing []string
	for n, where := range want {
		if !have[n] {
			missing = append(missing, fmt.Sprintf("%s (used by %s)", n, where))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("metrics used but not exported:\n%s", strings.Join(missing, "\n"))
	}
}
