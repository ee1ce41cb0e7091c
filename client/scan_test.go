package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// assertNoPlaintext scans everything a hub stores (every file of its data
// directory; every row of every table of its database; every object of its
// bucket) for the plaintext markers that clients sent: none may appear, in
// the clear or hex-encoded.
func assertNoPlaintext(t *testing.T, h *hubProc, markers []string) {
	t.Helper()
	if len(markers) == 0 {
		t.Fatal("nothing to look for")
	}
	for _, f := range findPlaintext(t, h, markers) {
		t.Error(f)
	}
}

// findPlaintext returns where markers were found.
func findPlaintext(t *testing.T, h *hubProc, markers []string) []string {
	t.Helper()
	var found []string
	scanned := 0
	check := func(where string, b []byte) {
		scanned++
		lower := bytes.ToLower(b)
		for _, m := range markers {
			if bytes.Contains(b, []byte(m)) || bytes.Contains(lower, []byte(hex.EncodeToString([]byte(m)))) {
				found = append(found, "plaintext "+m+" found in "+where)
			}
		}
	}
	filepath.WalkDir(h.Dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(path); err == nil {
				check(path, b)
			}
		}
		return nil
	})
	if h.DBURL != "" {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, h.DBURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables
			WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'`)
		if err != nil {
			t.Fatal(err)
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if len(tables) == 0 {
			t.Fatal("the hub's database has no tables")
		}
		for _, tbl := range tables {
			rows, err := conn.Query(ctx, "SELECT t::text FROM "+tbl+" t")
			if err != nil {
				t.Fatal(err)
			}
			texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range texts {
				check("table "+tbl, []byte(s))
			}
		}
		u, _ := url.Parse(os.Getenv("GUILDHALL_TEST_S3"))
		mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(os.Getenv("GUILDHALL_TEST_S3_ACCESS_KEY"), os.Getenv("GUILDHALL_TEST_S3_SECRET_KEY"), "")})
		if err != nil {
			t.Fatal(err)
		}
		for obj := range mc.ListObjects(ctx, h.Bucket, minio.ListObjectsOptions{Recursive: true}) {
			if obj.Err != nil {
				t.Fatal(obj.Err)
			}
			r, err := mc.GetObject(ctx, h.Bucket, obj.Key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(r)
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			check("object "+obj.Key, b)
		}
	}
	if scanned < 2 {
		t.Fatalf("scanned only %d places", scanned)
	}
	return found
}

// The scan finds what it looks for, in files, rows and objects.
func TestScanFindsPlaintext(t *testing.T) {
	for _, p := range profiles {
		t.Run(p, func(t *testing.T) {
			h := startHub(t, p)
			m := marker(t, "canary")
			os.WriteFile(filepath.Join(h.Dir, "canary"), []byte("xx"+m+"xx"), 0o600)
			if h.DBURL != "" {
				ctx := context.Background()
				conn, err := pgx.Connect(ctx, h.DBURL)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				if _, err := conn.Exec(ctx, "CREATE TABLE canary (b bytea); INSERT INTO canary VALUES ('\\x"+hex.EncodeToString([]byte(m))+"')"); err != nil {
					t.Fatal(err)
				}
			}
			found := findPlaintext(t, h, []string{m})
			want := 1
			if h.DBURL != "" {
				want = 2
			}
			if len(found) != want {
				t.Fatalf("found %v, want %d places", found, want)
			}
		})
	}
}
