package check

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func TestDockerfile(t *testing.T) {
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	var froms, users []string
	var healthcheck, cgoOff bool
	var buildLines []string
	for _, n := range res.AST.Children {
		switch strings.ToLower(n.Value) {
		case "from":
			froms = append(froms, n.Next.Value)
		case "user":
			users = append(users, n.Next.Value)
		case "healthcheck":
			healthcheck = true
		case "env":
			if strings.Contains(n.Original, "CGO_ENABLED=0") {
				cgoOff = true
			}
		case "run":
			if strings.Contains(n.Original, "go build") {
				buildLines = append(buildLines, n.Original)
			}
		}
	}
	if len(froms) < 2 {
		t.Fatalf("not multi-stage: %v", froms)
	}
	for _, img := range froms {
		if img != "scratch" && !regexp.MustCompile(`:\d`).MatchString(img) {
			t.Errorf("base image %q is not pinned to a version", img)
		}
	}
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "0") || users[len(users)-1] == "root" {
		t.Errorf("the runtime runs as %v, not an unprivileged user", users)
	}
	if !healthcheck || !cgoOff || len(buildLines) == 0 {
		t.Fatalf("healthcheck %v, CGO_ENABLED=0 %v, go build lines %d", healthcheck, cgoOff, len(buildLines))
	}
	for _, want := range []string{"-s -w", "-X main.version=", "./cmd/relay", "./cmd/hub", "./cmd/guild"} {
		if !strings.Contains(strings.Join(buildLines, " "), want) {
			t.Errorf("the build does not use %q", want)
		}
	}
	// Build with the Dockerfile's flags: the binaries must be static.
	out := t.TempDir()
	for _, cmd := range []string{"relay", "hub", "guild"} {
		bin := filepath.Join(out, cmd)
		b := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=check", "-o", bin, "./cmd/"+cmd)
		b.Dir = root
		b.Env = append(os.Environ(), "CGO_ENABLED=0")
		if o, err := b.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", cmd, err, o)
		}
		ef, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ef.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked", cmd)
			}
		}
		ef.Close()
		v, err := exec.Command(bin, "-version").CombinedOutput()
		if cmd != "guild" && (err != nil || !strings.Contains(string(v), "check")) {
			t.Errorf("%s -version: %q %v", cmd, v, err)
		}
	}
}
