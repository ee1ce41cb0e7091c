package client

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/guildhall/guildhall/storage/storagetest"
)

// The end-to-end tests run real hub processes (the cmd/hub binary) on real
// storage and drive them with the SDK as a user's client would.

var (
	hubBinOnce sync.Once
	hubBin     string
	hubBinErr  error
)

func buildHub(t *testing.T) string {
	t.Helper()
	hubBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "guildhall-hub-bin")
		if err != nil {
			hubBinErr = err
			return
		}
		hubBin = filepath.Join(dir, "hub")
		out, err := exec.Command("go", "build", "-o", hubBin, "../cmd/hub").CombinedOutput()
		if err != nil {
			hubBinErr = fmt.Errorf("building the hub: %v\n%s", err, out)
		}
	})
	if hubBinErr != nil {
		t.Fatal(hubBinErr)
	}
	return hubBin
}

// hubProc is a running hub process.
type hubProc struct {
	t       *testing.T
	profile string
	URL     string
	Admin   string
	dir     string // data directory (embedded profile)
	dbURL   string // its own database (postgres profile)
	bucket  string
	config  string
	cmd     *exec.Cmd
}

// startHub starts a hub on a storage profile: "sqlite" (embedded) or
// "postgres" (its own database of GUILDHALL_TEST_POSTGRES, blobs in a
// bucket of GUILDHALL_TEST_S3).
func startHub(t *testing.T, profile string) *hubProc {
	t.Helper()
	h := &hubProc{t: t, profile: profile, dir: t.TempDir()}
	cfg := fmt.Sprintf("data_dir: %s\nlisten: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nadmission:\n  mode: open\n", h.dir)
	if profile == "postgres" {
		base := storagetest.Require(t, "GUILDHALL_TEST_POSTGRES")
		s3 := storagetest.Require(t, "GUILDHALL_TEST_S3")
		h.dbURL = createDatabase(t, base)
		u, err := url.Parse(s3)
		if err != nil {
			t.Fatal(err)
		}
		h.bucket = fmt.Sprintf("e2e-%x", rand.Uint64())
		cfg += fmt.Sprintf("storage:\n  postgres_url: %q\n  s3:\n    endpoint: %s\n    bucket: %s\n    access_key: %s\n    secret_key: %s\n    secure: false\n    create_bucket: true\n",
			h.dbURL, u.Host, h.bucket, os.Getenv("GUILDHALL_TEST_S3_ACCESS_KEY"), os.Getenv("GUILDHALL_TEST_S3_SECRET_KEY"))
	}
	h.config = filepath.Join(h.dir, "hub.yaml")
	if err := os.WriteFile(h.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h.start()
	t.Cleanup(h.stop)
	return h
}

func (h *hubProc) start() {
	h.t.Helper()
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
	deadline := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		if m := api.FindStringSubmatch(sc.Text()); m != nil {
			h.URL = m[1]
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

func (h *hubProc) stop() {
	if h.cmd == nil {
		return
	}
	h.cmd.Process.Signal(os.Interrupt)
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

func createDatabase(t *testing.T, base string) string {
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

// newClient opens a client in a fresh directory with a new identity.
func newClient(t *testing.T, name string) *Client {
	t.Helper()
	c := emptyClient(t)
	if _, err := c.CreateIdentity(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return c
}

func emptyClient(t *testing.T) *Client {
	t.Helper()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// marker is a plaintext string the infrastructure must never hold.
func marker(t *testing.T, what string) string {
	return fmt.Sprintf("PLAINTEXT-%s-%x", what, rand.Uint64())
}

var profiles = []string{"sqlite", "postgres"}
