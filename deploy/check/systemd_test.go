package check

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unit parses a systemd unit file into section -> key -> values.
func unit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

func TestSystemdUnits(t *testing.T) {
	units, _ := filepath.Glob(filepath.Join(root, "deploy/systemd/*.service"))
	if len(units) != 2 {
		t.Fatalf("units: %v", units)
	}
	for _, u := range units {
		t.Run(filepath.Base(u), func(t *testing.T) {
			if path, err := exec.LookPath("systemd-analyze"); err == nil {
				if out, err := exec.Command(path, "verify", "--man=no", u).CombinedOutput(); err != nil && !strings.Contains(string(out), "Command /usr/local/bin/") {
					t.Errorf("systemd-analyze verify: %v\n%s", err, out)
				}
			}
			s := unit(t, u)["Service"]
			for k, want := range map[string]string{"ProtectSystem": "strict", "NoNewPrivileges": "yes", "ProtectHome": "yes", "PrivateTmp": "yes"} {
				if len(s[k]) != 1 || s[k][0] != want {
					t.Errorf("%s=%v, want %s", k, s[k], want)
				}
			}
			if len(s["User"]) != 1 || s["User"][0] == "root" {
				t.Errorf("User=%v: a dedicated user", s["User"])
			}
			caps := strings.Join(s["CapabilityBoundingSet"], " ")
			if caps != "" && caps != "CAP_NET_BIND_SERVICE" {
				t.Errorf("capabilities %q: only what low ports need", caps)
			}
			if !strings.HasPrefix(strings.Join(s["ExecStart"], ""), "/usr/local/bin/") {
				t.Errorf("ExecStart=%v", s["ExecStart"])
			}
		})
	}
}
