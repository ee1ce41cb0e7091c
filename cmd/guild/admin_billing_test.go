package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	_ "modernc.org/sqlite"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/policy"
)

type ledgerRow struct {
	At          string `json:"at"`
	Server      string `json:"server"`
	Label       string `json:"label"`
	Bytes       uint64 `json:"bytes"`
	Envelopes   uint64 `json:"envelopes"`
	Blobs       uint64 `json:"blobs"`
	EgressBytes uint64 `json:"egress_bytes"`
}

// A provider's billing day with the guild CLI against the hub binary
// sampling every second, on both profiles: the customer label set with
// "admin quota --label" shows in listings and in the ledger; the ledger
// shows the tenant's message and blob; a sync and a download show as
// egress in later samples; "admin tenant delete" needs --yes, leaves no
// row of the tenant in the database and no blob in the bucket or the data
// directory, is idempotent, and the member's next post is refused.
func TestAdminBillingThroughTheCLI(t *testing.T) {
	for _, profile := range []string{"sqlite", "postgres"} {
		t.Run(profile, func(t *testing.T) {
			hub := clienttest.NewHub(t, profile)
			hub.Extra = "billing:\n  sample_interval: 1s\n"
			hub.Start()
			alice, op := newUser(t), newUser(t)
			alice.run("identity", "create")
			var server struct {
				ID string `json:"id"`
			}
			alice.json(&server, "server", "create", "shop", "--hub", hub.URL)
			alice.run("channel", "create", "shop", "general")
			file := filepath.Join(t.TempDir(), "invoice.pdf")
			os.WriteFile(file, bytes.Repeat([]byte("invoice line\n"), 400), 0o600)
			var sent struct {
				ID string `json:"id"`
			}
			alice.json(&sent, "send", "shop", "general", "invoice attached", "--file", file)
			admin := []string{"--admin", hub.Admin}

			var shown struct {
				Tenants []struct {
					Label string `json:"label"`
				} `json:"tenants"`
			}
			op.json(&shown, append([]string{"admin", "quota", server.ID, "--label", "ACME Corp"}, admin...)...)
			if len(shown.Tenants) != 1 || shown.Tenants[0].Label != "ACME Corp" {
				t.Fatalf("admin quota --label: %+v", shown)
			}
			if got := op.run(append([]string{"admin", "tenants"}, admin...)...); !strings.Contains(got, `"ACME Corp"`) {
				t.Fatalf("admin tenants: %s", got)
			}

			ledger := func() []ledgerRow {
				t.Helper()
				out := op.run(append([]string{"admin", "usage", "--ledger", "--format", "jsonl", "--label", "ACME Corp"}, admin...)...)
				var rows []ledgerRow
				dec := json.NewDecoder(strings.NewReader(out))
				for dec.More() {
					var r ledgerRow
					if err := dec.Decode(&r); err != nil {
						t.Fatalf("ledger: %v in %q", err, out)
					}
					if r.Server != server.ID || r.Label != "ACME Corp" {
						t.Fatalf("--label ACME Corp gave %+v", r)
					}
					rows = append(rows, r)
				}
				return rows
			}
			egress := func(rows []ledgerRow) (sum uint64) {
				for _, r := range rows {
					sum += r.EgressBytes
				}
				return sum
			}
			waitFor := func(what string, ok func([]ledgerRow) bool) []ledgerRow {
				t.Helper()
				deadline := time.Now().Add(15 * time.Second)
				for {
					rows := ledger()
					if ok(rows) {
						return rows
					}
					if time.Now().After(deadline) {
						t.Fatalf("no %s in the ledger after 15 s: %+v", what, rows)
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
			rows := waitFor("sample with the message and the blob", func(rows []ledgerRow) bool {
				return len(rows) > 0 && rows[len(rows)-1].Envelopes >= 1 && rows[len(rows)-1].Blobs == 1
			})
			if _, err := time.Parse(time.RFC3339, rows[0].At); err != nil || !strings.HasSuffix(rows[0].At, "Z") {
				t.Fatalf("ledger time %q", rows[0].At)
			}
			if csvOut := op.run(append([]string{"admin", "usage", "--ledger", "--label", "ACME Corp"}, admin...)...); !strings.HasPrefix(csvOut, "at,server,label,bytes,envelopes,blobs,egress_bytes\n") ||
				!strings.Contains(csvOut, server.ID+",ACME Corp,") {
				t.Fatalf("ledger CSV: %s", csvOut)
			}
			before := egress(rows)
			alice.run("sync", "shop", "general")
			alice.run("download", "shop", "general", sent.ID, "--out", t.TempDir())
			waitFor("egress of the sync and the download", func(rows []ledgerRow) bool { return egress(rows) >= before+5200 })

			if rows, blobs := leftovers(t, hub); rows == 0 || blobs != 1 {
				t.Fatalf("before the deletion: %d rows of tenant data, %d blobs; want some and 1", rows, blobs)
			}
			if _, err := op.try(append([]string{"admin", "tenant", "delete", server.ID}, admin...)...); err == nil || !strings.Contains(err.Error(), "--yes") {
				t.Fatalf("delete without --yes: %v", err)
			}
			if got := op.run(append([]string{"admin", "tenant", "delete", server.ID, "--yes"}, admin...)...); !strings.Contains(got, "deleted "+server.ID) {
				t.Fatalf("delete: %s", got)
			}
			if got := op.run(append([]string{"admin", "tenant", "delete", server.ID, "--yes"}, admin...)...); !strings.Contains(got, "deleted already") {
				t.Fatalf("delete again: %s", got)
			}
			if _, err := op.try(append([]string{"admin", "tenant", "delete", policy.Sum([]byte("nobody")).String(), "--yes"}, admin...)...); err == nil || !strings.Contains(err.Error(), "not_found") {
				t.Fatalf("delete of no tenant: %v", err)
			}
			if rows, blobs := leftovers(t, hub); rows != 0 || blobs != 0 {
				t.Fatalf("after the deletion of the only tenant: %d rows of tenant data, %d blobs", rows, blobs)
			}
			if _, err := alice.try("send", "shop", "general", "after the deletion"); err == nil || !strings.Contains(err.Error(), "not_hosted") {
				t.Fatalf("a post after the deletion: %v, want not_hosted", err)
			}
			if rows := ledger(); len(rows) == 0 {
				t.Fatal("the deleted tenant's samples are gone from the ledger")
			}
		})
	}
}

// leftovers looks into the hub's database and blob store directly: how
// many rows all tables of tenant data hold, and how many blob objects (or
// files) there are.
func leftovers(t *testing.T, hub *clienttest.Hub) (rows, blobs int) {
	t.Helper()
	ctx := context.Background()
	tables := []string{"tenants", "events", "channels", "envelopes", "key_entries", "envelope_blobs", "blob_refs", "blob_deletes"}
	var count func(table string) int
	if hub.Profile == "postgres" {
		conn, err := pgx.Connect(ctx, hub.DBURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		count = func(table string) (n int) {
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		u, _ := url.Parse(os.Getenv("GUILDHALL_TEST_S3"))
		mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(os.Getenv("GUILDHALL_TEST_S3_ACCESS_KEY"), os.Getenv("GUILDHALL_TEST_S3_SECRET_KEY"), "")})
		if err != nil {
			t.Fatal(err)
		}
		for obj := range mc.ListObjects(ctx, hub.Bucket, minio.ListObjectsOptions{Recursive: true}) {
			if obj.Err != nil {
				t.Fatal(obj.Err)
			}
			blobs++
		}
	} else {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(hub.Dir, "hub.db")+"?_pragma=query_only(ON)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		count = func(table string) (n int) {
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		filepath.WalkDir(filepath.Join(hub.Dir, "blobs"), func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				blobs++
			}
			return nil
		})
	}
	for _, table := range tables {
		rows += count(table)
	}
	return rows, blobs
}
