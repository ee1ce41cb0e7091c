package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/policy"
)

// "guild admin quota SERVER --blobs 5" changes the blob limit and nothing
// else: a tenant with a byte limit keeps it. Without limits the command
// shows the quota; "unlimited" lifts one limit; 0 is refused as ambiguous.
func TestAdminQuotaChangesOnlyWhatItNames(t *testing.T) {
	hub := clienttest.StartHub(t, "sqlite")
	op := newUser(t)
	server := policy.Sum([]byte("a provisioned server")).String()
	type quota struct {
		Bytes     uint64 `json:"bytes"`
		Envelopes uint64 `json:"envelopes"`
		Blobs     uint64 `json:"blobs"`
	}
	quotaOf := func(args ...string) quota {
		t.Helper()
		var out struct {
			Tenants []struct {
				Server string `json:"server"`
				Quota  quota  `json:"quota"`
			} `json:"tenants"`
		}
		op.json(&out, append([]string{"admin", "quota", server, "--admin", hub.Admin}, args...)...)
		if len(out.Tenants) != 1 || out.Tenants[0].Server != server {
			t.Fatalf("guild admin quota %v: %+v", args, out)
		}
		return out.Tenants[0].Quota
	}
	// A new tenant: the limits given, the others unlimited.
	if q := quotaOf("--bytes", "53687091200", "--envelopes", "1000"); q != (quota{Bytes: 50 << 30, Envelopes: 1000}) {
		t.Fatalf("created with %+v", q)
	}
	if q := quotaOf("--blobs", "5"); q != (quota{Bytes: 50 << 30, Envelopes: 1000, Blobs: 5}) {
		t.Fatalf("after --blobs 5: %+v, want the byte and envelope limits kept", q)
	}
	if q := quotaOf(); q != (quota{Bytes: 50 << 30, Envelopes: 1000, Blobs: 5}) {
		t.Fatalf("shown: %+v", q)
	}
	if q := quotaOf("--envelopes", "unlimited"); q != (quota{Bytes: 50 << 30, Blobs: 5}) {
		t.Fatalf("after --envelopes unlimited: %+v", q)
	}
	if got := op.run("admin", "quota", server, "--admin", hub.Admin); !strings.Contains(got, "/ 53687091200") || !strings.Contains(got, "envelopes / unlimited") {
		t.Fatalf("shown to a person: %s", got)
	}
	if _, err := op.try("admin", "quota", server, "--admin", hub.Admin, "--bytes", "0"); err == nil {
		t.Fatal("--bytes 0 was accepted")
	}
	if q := quotaOf(); q.Bytes != 50<<30 {
		t.Fatalf("a refused --bytes 0 changed the quota: %+v", q)
	}
}

// A member whose server is over quota, or suspended, is told so in words
// naming the hub, without the storage backend's; an operator is told a
// missing admin token from a wrong one.
func TestMembersSeeQuotaAndSuspensionInWords(t *testing.T) {
	for _, profile := range []string{"sqlite", "postgres"} {
		t.Run(profile, func(t *testing.T) {
			t.Setenv("GUILDHALL_HUB_ADMIN_TOKEN", "the-admin-token")
			hub := clienttest.StartHub(t, profile)
			alice, op := newUser(t), newUser(t)
			alice.run("identity", "create")
			var server struct {
				ID string `json:"id"`
			}
			alice.json(&server, "server", "create", "book club", "--hub", hub.URL)
			alice.run("channel", "create", "book club", "general")
			admin := []string{"--admin", hub.Admin, "--token", "the-admin-token"}

			var shown struct {
				Tenants []struct {
					Usage struct {
						Bytes uint64 `json:"bytes"`
					} `json:"usage"`
				} `json:"tenants"`
			}
			op.json(&shown, append([]string{"admin", "quota", server.ID}, admin...)...)
			used := shown.Tenants[0].Usage.Bytes
			op.run(append([]string{"admin", "quota", server.ID, "--bytes", strconv.FormatUint(used+100, 10)}, admin...)...)
			_, err := alice.try("send", "book club", "general", strings.Repeat("long message ", 100))
			host := strings.TrimPrefix(hub.URL, "http://")
			if err == nil || !strings.Contains(err.Error(), "quota_exceeded") ||
				!strings.Contains(err.Error(), "this server's storage on hub "+host+" is full (bytes: limit "+strconv.FormatUint(used+100, 10)+", used ") {
				t.Fatalf("a send over quota: %v", err)
			}
			for _, internal := range []string{"postgres", "sqlite", "storage:", "put envelopes"} {
				if strings.Contains(err.Error(), internal) {
					t.Fatalf("a member was shown %q: %v", internal, err)
				}
			}

			op.run(append([]string{"admin", "quota", server.ID, "--bytes", "unlimited"}, admin...)...)
			op.run(append([]string{"admin", "suspend", server.ID}, admin...)...)
			_, err = alice.try("send", "book club", "general", "hello")
			if err == nil || !strings.Contains(err.Error(), "suspended") || !strings.Contains(err.Error(), "the operator of hub "+host+" suspended this server's hosting") ||
				strings.Contains(err.Error(), "storage:") {
				t.Fatalf("a send while suspended: %v", err)
			}

			_, missing := op.try("admin", "tenants", "--admin", hub.Admin)
			_, wrong := op.try("admin", "tenants", "--admin", hub.Admin, "--token", "not-the-token")
			if missing == nil || wrong == nil || !strings.Contains(missing.Error(), "unauthenticated") || !strings.Contains(wrong.Error(), "unauthenticated") ||
				!strings.Contains(missing.Error(), "needs the admin token") || !strings.Contains(wrong.Error(), "wrong admin token") {
				t.Fatalf("no token: %v; a wrong token: %v", missing, wrong)
			}
		})
	}
}
