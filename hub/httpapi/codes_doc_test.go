package httpapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/guildhall/guildhall/wire"
)

// TestCodesDocumented checks that docs/API.md's Errors table lists every
// error code the hub can put on the wire, with the HTTP status the hub
// answers it with, and no code the hub cannot produce. The codes are read
// from the const blocks that declare them (policy/errors.go, whose Code
// constants are policy's decisions, and wire/codes.go, the API's own), so
// a code added there without a row in the table fails here.
func TestCodesDocumented(t *testing.T) {
	codes := map[string]string{} // code -> where it is declared
	for _, src := range []struct{ file, prefix, typ string }{
		{"../../policy/errors.go", "Code", "Code"}, // typed: policy.Code
		{"../../wire/codes.go", "Code", ""},        // untyped string constants
	} {
		found := constCodes(t, src.file, src.prefix, src.typ)
		if len(found) < 10 {
			t.Fatalf("%s: found only %d codes (%v); has the const block moved?", src.file, len(found), found)
		}
		for name, code := range found {
			codes[code] = src.file + ": " + name
		}
	}

	table := errorsTable(t, "../../docs/API.md")
	for code, where := range codes {
		if _, ok := table[code]; !ok {
			t.Errorf("code %q (%s) is missing from docs/API.md's Errors table", code, where)
		}
	}
	for code, status := range table {
		if _, ok := codes[code]; !ok {
			t.Errorf("docs/API.md's Errors table lists %q, which neither policy/errors.go nor wire/codes.go declares", code)
			continue
		}
		if status == 0 { // not an HTTP answer (WebSocket cut frames only)
			continue
		}
		if got := wire.Status(code); got != status {
			t.Errorf("docs/API.md gives %q HTTP %d; the hub answers %d (wire.Status)", code, status, got)
		}
	}
}

// constCodes parses file and returns, by constant name, the string value of
// every constant whose name starts with prefix and, when typ is set, that is
// declared with that type.
func constCodes(t *testing.T, file, prefix, typ string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if typ != "" {
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != typ {
					continue
				}
			}
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, prefix) || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out[name.Name] = v
			}
		}
	}
	return out
}

// errorsTable reads the table of the "## Errors" section of the API
// document: every backquoted code in a row's first cell, with the row's
// HTTP status (0 when the cell is not a number).
func errorsTable(t *testing.T, file string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Errors\n")
	if !ok {
		t.Fatalf("%s has no \"## Errors\" section", file)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	codeRE := regexp.MustCompile("`([a-z_]+)`")
	out := map[string]int{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if !strings.HasPrefix(strings.TrimSpace(line), "|") || len(cells) < 3 {
			continue
		}
		status, _ := strconv.Atoi(strings.TrimSpace(cells[1]))
		for _, m := range codeRE.FindAllStringSubmatch(cells[0], -1) {
			out[m[1]] = status
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no codes in the Errors table", file)
	}
	return out
}
