// Package clienttest runs real hub processes (the cmd/hub binary) on real
// storage for end-to-end tests of clients: the embedded profile, or
// PostgreSQL and MinIO from the test environment (deploy/testenv.sh).
package clienttest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/guildhall/guildhall/storage/storagetest"
)

var (
	hubBinOnce sync.Once
	hubBin     string
	hubBinErr  error
)

// buildHub builds cmd/hub once per test binary. The module root is found
// from the working directory, so tests of any package can use it.
func buildHub(t testing.TB) string {
	t.Helper()
	hubBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "guildhall-hub-bin")
		if err != nil {
			hubBinErr = err
			return
		}
		hubBin = filepath.Join(dir, "hub")
		root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
		if err != nil {
			hubBinErr = fmt.Errorf("finding the module: %v", err)
			return
		}
		out, err := exec.Command("go", "build", "-o", hubBin, filepath.Join(strings.TrimSpace(string(root)), "cmd", "hub")).CombinedOutput()
		if err != nil {
			hubBinErr = fmt.Errorf("building the hub: %v\n%s", err, out)
		}
	})
	if hubBinErr != nil {
		t.Fatal(hubBinErr)
	}
	return hubBin
}

// Hub is a running hub process.
type Hub struct {
	t       testing.TB
	Profile string
	URL     string // public API
	Admin   string // admin API
	Dir     string // data directory
	DBURL   string // its own database (postgres profile)
	Bucket  string // its own bucket (postgres profile)
	P2P     string // its libp2p address, when p2p is enabled (Extra)
	// Admission and Extra shape the configuration NewHub writes: the
	// admission mode (default open) and more YAML (p2p, home...).
	Admission, Extra string
	base             string
	config           string
	cmd              *exec.Cmd
}

// StartHub starts a hub on a storage profile: "sqlite" (embedded) or
// "postgres" (its own database of GUILDHALL_TEST_POSTGRES, blobs in its own
// bucket of GUILDHALL_TEST_S3). It admits any server; the test stops it.
func StartHub(t testing.TB, profile string) *Hub {
	t.Helper()
	h := NewHub(t, profile)
	h.Start()
	return h
}

// NewHub prepares a hub without starting it: set Admission and Extra, run
// LinkRequest if it is to be a home node, then Start.
func NewHub(t testing.TB, profile string) *Hub {
	t.Helper()
	h := &Hub{t: t, Profile: profile, Dir: t.TempDir(), Admission: "open"}
	cfg := fmt.Sprintf("data_dir: %s\nlisten: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n", h.Dir)
	if profile == "postgres" {
		base := storagetest.Require(t, "GUILDHALL_TEST_POSTGRES")
		s3 := storagetest.Require(t, "GUILDHALL_TEST_S3")
		h.DBURL = createDatabase(t, base)
		u, err := url.Parse(s3)
		if err != nil {
			t.Fatal(err)
		}
		h.Bucket = fmt.Sprintf("e2e-%x", rand.Uint64())
		cfg += fmt.Sprintf("storage:\n  postgres_url: %q\n  s3:\n    endpoint: %s\n    bucket: %s\n    access_key: %s\n    secret_key: %s\n    secure: false\n    create_bucket: true\n",
			h.DBURL, u.Host, h.Bucket, os.Getenv("GUILDHALL_TEST_S3_ACCESS_KEY"), os.Getenv("GUILDHALL_TEST_S3_SECRET_KEY"))
	}
	h.base, h.config = cfg, filepath.Join(h.Dir, "hub.yaml")
	t.Cleanup(h.Stop)
	return h
}

// Replica prepares another hub process on h's storage: its database, its
// bucket and its node key, as replicas behind a load balancer share them
// (postgres profile only). It has its own data directory and ports, and
// takes h's Admission and Extra as they are now; call Start after h has
// started once (the node key exists then). The test stops it.
func (h *Hub) Replica() *Hub {
	h.t.Helper()
	if h.Profile != "postgres" {
		h.t.Fatal("replicas share PostgreSQL and S3: use the postgres profile")
	}
	r := &Hub{t: h.t, Profile: h.Profile, Dir: h.t.TempDir(), DBURL: h.DBURL, Bucket: h.Bucket, Admission: h.Admission, Extra: h.Extra}
	own := "data_dir: " + h.Dir + "\n"
	if !strings.HasPrefix(h.base, own) {
		h.t.Fatal("clienttest: unexpected hub configuration")
	}
	r.base = "data_dir: " + r.Dir + "\nnode_key_file: " + filepath.Join(h.Dir, "node.key") + "\n" + strings.TrimPrefix(h.base, own)
	r.config = filepath.Join(r.Dir, "hub.yaml")
	h.t.Cleanup(r.Stop)
	return r
}

func (h *Hub) writeConfig() {
	h.t.Helper()
	cfg := h.base + "admission:\n  mode: " + h.Admission + "\n" + h.Extra
	if err := os.WriteFile(h.config, []byte(cfg), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// LinkRequest returns the hub's request to become its owner's home node.
func (h *Hub) LinkRequest() string {
	h.t.Helper()
	h.writeConfig()
	out, err := exec.Command(buildHub(h.t), "-config", h.config, "link-request").CombinedOutput()
	if err != nil {
		h.t.Fatalf("link-request: %v\n%s", err, out)
	}
	return strings.Fields(string(out))[0]
}

// Start starts the hub (again, on the same port after Stop).
func (h *Hub) Start() {
	h.t.Helper()
	h.writeConfig()
	cmd := exec.Command(buildHub(h.t), "-config", h.config)
	if h.URL != "" { // restart on the same port
		cmd.Args = append(cmd.Args, "-listen", strings.TrimPrefix(h.URL, "http://"))
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.cmd = cmd
	sc := bufio.NewScanner(out)
	api, admin := regexp.MustCompile(`^api\s+(\S+)`), regexp.MustCompile(`^admin\s+(\S+)`)
	p2p := regexp.MustCompile(`^\s+(/ip4/\S+/p2p/\S+)`)
	deadline := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		if m := api.FindStringSubmatch(sc.Text()); m != nil {
			h.URL = m[1]
		}
		if m := p2p.FindStringSubmatch(sc.Text()); m != nil && h.P2P == "" {
			h.P2P = m[1]
		}
		if m := admin.FindStringSubmatch(sc.Text()); m != nil {
			h.Admin = m[1]
			break
		}
	}
	if h.Admin == "" {
		h.t.Fatal("the hub did not start")
	}
	go func() {
		for sc.Scan() {
		}
	}()
}

// Kill kills the hub with SIGKILL: no shutdown, no flush, as a crash.
func (h *Hub) Kill() {
	if h.cmd == nil {
		return
	}
	h.cmd.Process.Kill()
	h.cmd.Wait()
	h.cmd = nil
}

// Stop stops the hub with SIGINT, as an operator would.
func (h *Hub) Stop() { h.stop(os.Interrupt) }

// Terminate stops the hub with SIGTERM, as a service manager would: it
// cuts its subscribers with going_away and answers the posts in flight.
func (h *Hub) Terminate() { h.stop(syscall.SIGTERM) }

func (h *Hub) stop(sig os.Signal) {
	if h.cmd == nil {
		return
	}
	h.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		h.cmd.Process.Kill()
		<-done
	}
	h.cmd = nil
}

func createDatabase(t testing.TB, base string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("e2e_%x", rand.Uint64())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// FreePort returns a loopback TCP port nothing listens on now, for a
// listener that must keep its address across restarts (a hub's libp2p
// address, which its peers are configured with).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Profiles are the storage profiles a hub runs on.
var Profiles = []string{"sqlite", "postgres"}

// CPU returns the CPU time (user and system) the running hub process has
// used so far, read from /proc: what an attack test charges to the hub.
func (h *Hub) CPU() time.Duration {
	h.t.Helper()
	if h.cmd == nil {
		h.t.Fatal("the hub is not running")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", h.cmd.Process.Pid))
	if err != nil {
		h.t.Fatal(err)
	}
	// Fields after the command name (which ends at the last ')'): state is
	// field 3, utime and stime are fields 14 and 15, in clock ticks (USER_HZ,
	// 100 on Linux).
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			h.t.Fatalf("reading the hub's CPU time: %v", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
