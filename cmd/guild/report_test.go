package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/payload"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// A member reports an abusive message through the CLI; the hub's operator
// reads that message, its sender and the reporter in the admin API and
// checks the evidence against the sender's signature; the key it was given
// opens no other message of the epoch.
func TestReportThroughTheCLI(t *testing.T) {
	hub := clienttest.StartHub(t, "sqlite")
	alice, bob := newUser(t), newUser(t)
	alice.run("identity", "create")
	bob.run("identity", "create")
	alice.run("server", "create", "club", "--hub", hub.URL)
	alice.run("channel", "create", "club", "general")
	var inv struct {
		Token string `json:"token"`
	}
	alice.json(&inv, "invite", "create", "club")
	bob.run("join", inv.Token)
	alice.run("send", "club", "general", "hello bob")
	bob.run("sync", "club", "general")
	bob.run("send", "club", "general", "an innocent line")
	bob.run("send", "club", "general", "buy cheap pills at example.test")
	alice.run("sync", "club", "general")
	var hist []struct {
		ID   string `json:"id"`
		Text string `json:"text"`
	}
	alice.json(&hist, "history", "club", "general")
	var abusive, innocent string
	for _, m := range hist {
		switch m.Text {
		case "buy cheap pills at example.test":
			abusive = m.ID
		case "an innocent line":
			innocent = m.ID
		}
	}
	if abusive == "" || innocent == "" {
		t.Fatalf("alice's history: %+v", hist)
	}
	alice.run("report", "club", abusive[:20], "--reason", "spam")
	if _, err := alice.try("report", "club", "bafkreinothere1234567", "--reason", "x"); err == nil {
		t.Fatal("a report of a message not held was filed")
	}

	var reports wire.Reports
	adminGet(t, hub.Admin+"/v1/admin/reports", &reports)
	if len(reports.Reports) != 1 {
		t.Fatalf("%d reports, want 1", len(reports.Reports))
	}
	r := reports.Reports[0]
	if r.Text != "buy cheap pills at example.test" || r.Reason != "spam" || r.Envelope.String() != abusive {
		t.Fatalf("the operator reads %q (reason %q) of %s", r.Text, r.Reason, r.Envelope)
	}
	env, err := policy.ParseEnvelope(r.Evidence) // the sender's signature, checked again by the operator
	if err != nil || env.Author != r.Author || env.ID != r.Envelope || r.Author == r.Reporter {
		t.Fatalf("evidence %v: author %s, reporter %s", err, r.Author, r.Reporter)
	}
	// A second report, of the innocent line: each key opens its own
	// message only.
	alice.run("report", "club", innocent, "--reason", "testing")
	adminGet(t, hub.Admin+"/v1/admin/reports?after="+fmt.Sprint(r.Seq), &reports)
	if len(reports.Reports) != 1 || reports.Reports[0].Text != "an innocent line" {
		t.Fatalf("the second report: %+v", reports.Reports)
	}
	r2 := reports.Reports[0]
	oe, err := policy.ParseEnvelope(r2.Evidence)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := payload.Open(r.Key, oe.Ciphertext, payload.AAD(oe.Server, oe.Channel, oe.Epoch)); err == nil {
		t.Fatal("the reported message's key opens another message of the same epoch")
	}
}

func adminGet(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
