package check

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

const root = "../.."

// envExample returns .env.example's keys, each given a value.
func envExample(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			if v = strings.TrimSpace(v); v == "" { // the operator's to fill in
				v = "value-of-" + strings.ToLower(strings.TrimSpace(k))
			}
			env[strings.TrimSpace(k)] = v
		}
	}
	env["RELAY_EXTERNAL_IP"] = "198.51.100.7"
	return env
}

func loadCompose(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(root)
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  abs,
		ConfigFiles: []types.ConfigFile{{Filename: "docker-compose.yml", Content: b}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("guildhall", true); o.Profiles = []string{"*"} })
}

func TestCompose(t *testing.T) {
	p, err := loadCompose(t, envExample(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"postgres", "minio", "minio-init", "hub", "relay", "prometheus", "grafana"}
	for _, name := range want {
		if _, err := p.GetService(name); err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
	}
	pinned := regexp.MustCompile(`:[^:]*\d[^:]*$`)
	stateful := map[string]string{"postgres": "/var/lib/postgresql/data", "minio": "/data", "hub": "/data", "relay": "/data",
		"prometheus": "/prometheus", "grafana": "/var/lib/grafana"}
	secretKey := regexp.MustCompile(`(?i)(password|secret|token|_url)`)
	raw, _ := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	for _, s := range p.Services {
		// Every service has a healthcheck, or says why not.
		if s.HealthCheck == nil || s.HealthCheck.Disable {
			if _, ok := s.Extensions["x-healthcheck-exempt"]; !ok {
				t.Errorf("%s: no healthcheck and no x-healthcheck-exempt reason", s.Name)
			}
		}
		// Dependencies wait for health (or completion of one-shot jobs).
		for dep, d := range s.DependsOn {
			if d.Condition != types.ServiceConditionHealthy && d.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s depends on %s with condition %q", s.Name, dep, d.Condition)
			}
		}
		// Images pinned by version.
		if s.Image == "" || strings.HasSuffix(s.Image, ":latest") || !pinned.MatchString(s.Image) {
			t.Errorf("%s: image %q is not pinned to a version", s.Name, s.Image)
		}
		// State on volumes.
		if path, ok := stateful[s.Name]; ok {
			found := false
			for _, v := range s.Volumes {
				if v.Type == types.VolumeTypeVolume && v.Target == path {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: its state (%s) is not on a named volume", s.Name, path)
			}
		}
		// No literal secrets: every secret-looking variable comes from .env.
		for k, v := range s.Environment {
			if v == nil || !secretKey.MatchString(k) {
				continue
			}
			if !strings.Contains(*v, "value-of-") {
				t.Errorf("%s: %s is set literally, not from .env", s.Name, k)
			}
		}
	}
	if regexp.MustCompile(`(?i)(password|secret|token)[A-Z_]*:\s*["']?[A-Za-z0-9]{6,}`).Match(raw) {
		t.Error("docker-compose.yml holds what looks like a literal secret")
	}
}

// A missing secret stops compose with a message naming it.
func TestComposeRefusesMissingSecrets(t *testing.T) {
	env := envExample(t)
	for _, k := range []string{"POSTGRES_PASSWORD", "HUB_ADMIN_TOKEN", "TURN_SECRET", "MINIO_ROOT_PASSWORD", "RELAY_EXTERNAL_IP"} {
		e := map[string]string{}
		for a, b := range env {
			if a != k {
				e[a] = b
			}
		}
		_, err := loadCompose(t, e)
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("without %s: %v", k, err)
		}
	}
}

// Grafana's password belongs to the observability profile: compose starts
// the rest without it, and Grafana itself refuses to start with none
// (rather than with its default admin password).
func TestGrafanaPasswordOnlyForObservability(t *testing.T) {
	env := envExample(t)
	delete(env, "GRAFANA_ADMIN_PASSWORD")
	p, err := loadCompose(t, env)
	if err != nil {
		t.Fatalf("compose without GRAFANA_ADMIN_PASSWORD: %v", err)
	}
	g, err := p.GetService("grafana")
	if err != nil {
		t.Fatal(err)
	}
	script := strings.Join(g.Entrypoint, " ")
	if !strings.Contains(script, `-z "$GF_SECURITY_ADMIN_PASSWORD"`) || !strings.Contains(script, "exit 1") || !strings.Contains(script, "exec /run.sh") {
		t.Fatalf("grafana's entrypoint does not refuse an empty password: %q", script)
	}
	if pw := g.Environment["GF_SECURITY_ADMIN_PASSWORD"]; pw == nil || *pw != "" {
		t.Fatalf("grafana's password without GRAFANA_ADMIN_PASSWORD: %v", pw)
	}
}

// The build context holds no secrets and no locally built binaries.
func TestDockerignoreKeepsSecretsOut(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{".env", ".env.*", "!.env.example", ".git", "/guild", "/hubload", "/cmd/*/hub", "/cmd/*/guild", "/cmd/*/relay"} {
		if !lines[want] {
			t.Errorf(".dockerignore lacks %q", want)
		}
	}
}

// The hub's /metrics needs the admin token: compose hands it to Prometheus
// as a secret (from .env, as the hub gets it), and the hub's scrape job
// sends it from there.
func TestPrometheusSendsTheAdminToken(t *testing.T) {
	p, err := loadCompose(t, envExample(t))
	if err != nil {
		t.Fatal(err)
	}
	sec, ok := p.Secrets["hub_admin_token"]
	if !ok || sec.Environment != "HUB_ADMIN_TOKEN" {
		t.Fatalf("secret hub_admin_token: %+v, want it from HUB_ADMIN_TOKEN", sec)
	}
	prom, err := p.GetService("prometheus")
	if err != nil {
		t.Fatal(err)
	}
	mounted := false
	for _, s := range prom.Secrets {
		mounted = mounted || s.Source == "hub_admin_token"
	}
	if !mounted {
		t.Fatal("prometheus does not mount the secret hub_admin_token")
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	job := string(b)[strings.Index(string(b), "job_name: guildhall-hub"):]
	if next := strings.Index(job[1:], "job_name:"); next >= 0 {
		job = job[:next+1]
	}
	if !strings.Contains(job, "credentials_file: /run/secrets/hub_admin_token") {
		t.Fatalf("the hub's scrape job does not send the admin token:\n%s", job)
	}
}
