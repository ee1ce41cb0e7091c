package main

import (
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
