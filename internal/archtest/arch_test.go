// Package archtest checks the shape of the tree: who may import whom, that
// authority is decided only in policy, and that files stay small enough to
// read. It has no code of its own; its tests read the module's source.
package archtest

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/guildhall/guildhall"

// root returns the module's root directory.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", dir, err)
	}
	return dir
}

// sources returns the module's non-test Go files, relative to the root,
// outside nested modules (deploy/check) and caches.
func sources(t *testing.T) []string {
	t.Helper()
	r := root(t)
	var out []string
	err := filepath.WalkDir(r, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(r, p)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil && rel != "." {
				return filepath.SkipDir // a nested module
			}
			return nil
		}
		if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 50 {
		t.Fatalf("found only %d source files under %s", len(out), r)
	}
	return out
}

// deps lists the module packages (and, with all, every package) pkg
// depends on.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg)
	cmd.Dir = root(t)
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	var out []string
	for _, l := range strings.Fields(string(b)) {
		out = append(out, l)
	}
	return out
}

func TestDependencies(t *testing.T) {
	for _, tc := range []struct {
		pkg    string
		allow  func(dep string) bool
		reason string
	}{
		{"./policy", func(d string) bool {
			return d == module+"/policy" || d == "github.com/fxamacker/cbor/v2" || d == "github.com/x448/float16"
		}, "policy uses the standard library and the CBOR library only"},
		{"./client/...", func(d string) bool { return !strings.HasPrefix(d, module+"/hub") }, "the client never imports anything under hub/"},
		{"./wire", func(d string) bool {
			for _, p := range []string{"/hub", "/client", "/cmd", "/internal", "/fanout", "/relay", "/p2p"} {
				if strings.HasPrefix(d, module+p) {
					return false
				}
			}
			return true
		}, "wire defines bytes; it depends on no component that speaks them"},
		{"./cmd/hub", func(d string) bool { return !strings.HasPrefix(d, module+"/client") }, "cmd/hub does not import the client"},
		{"./cmd/relay", func(d string) bool {
			return !strings.HasPrefix(d, module+"/client") && !strings.HasPrefix(d, module+"/hub") && !strings.HasPrefix(d, module+"/storage")
		}, "the relay stores nothing and is no client"},
	} {
		t.Run(tc.pkg, func(t *testing.T) {
			ds := deps(t, tc.pkg)
			if len(ds) == 0 {
				t.Fatalf("go list found nothing for %s", tc.pkg)
			}
			for _, d := range ds {
				if !tc.allow(d) {
					t.Errorf("%s depends on %s: %s", tc.pkg, d, tc.reason)
				}
			}
		})
	}
}

// stateQuestions are the methods of policy.State that answer a part of an
// authority question. Outside policy, code asks a whole rule (rules.go)
// instead, so that every decision has one home.
var stateQuestions = map[string]bool{"IsMember": true, "IsBanned": true, "IsDeviceRevoked": true, "Permissions": true}

func TestAuthorityOnlyInPolicy(t *testing.T) {
	r := root(t)
	fset := token.NewFileSet()
	for _, rel := range sources(t) {
		if strings.HasPrefix(rel, "policy/") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(r, rel), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch {
			case stateQuestions[sel.Sel.Name]:
				t.Errorf("%s: calls %s: ask a rule of policy (rules.go) instead of deciding here", fset.Position(call.Pos()), sel.Sel.Name)
			case sel.Sel.Name == "Has" && len(call.Args) == 1 && isPolicyPerm(call.Args[0]):
				t.Errorf("%s: tests a permission: ask a rule of policy (rules.go) instead of deciding here", fset.Position(call.Pos()))
			}
			return true
		})
	}
}

// isPolicyPerm reports whether e names a permission constant of policy.
func isPolicyPerm(e ast.Expr) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && x.Name == "policy" && strings.HasPrefix(sel.Sel.Name, "Perm")
}

func TestFileSizes(t *testing.T) {
	r := root(t)
	for _, rel := range sources(t) {
		n := lines(t, filepath.Join(r, rel))
		if n > 600 {
			t.Errorf("%s has %d lines: split it (at most 600 outside tests)", rel, n)
		}
		if strings.HasPrefix(rel, "cmd/") && filepath.Base(rel) == "main.go" && n > 150 {
			t.Errorf("%s has %d lines: a main wires packages and runs (at most 150)", rel, n)
		}
	}
}

func lines(t *testing.T, path string) int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for s := bufio.NewScanner(f); s.Scan(); {
		n++
	}
	return n
}

func TestPackageDocs(t *testing.T) {
	r := root(t)
	documented := map[string]bool{}
	dirs := map[string]bool{}
	fset := token.NewFileSet()
	for _, rel := range sources(t) {
		dir := filepath.Dir(rel)
		dirs[dir] = true
		f, err := parser.ParseFile(fset, filepath.Join(r, rel), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
			documented[dir] = true
		}
	}
	for dir := range dirs {
		if !documented[dir] {
			t.Errorf("package %s has no doc comment saying what it is for and what it must never do", dir)
		}
	}
}
