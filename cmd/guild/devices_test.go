package main

import (
	"strings"
	"testing"

	"github.com/guildhall/guildhall/client/clienttest"
)

// A person with a laptop and a phone sees both in device list and revokes
// the phone by the name shown; the phone can no longer post, and a name
// that names no device is refused.
func TestDevicesByName(t *testing.T) {
	hub := clienttest.StartHub(t, "sqlite")
	laptop, phone := newUser(t), newUser(t)
	laptop.run("identity", "create")
	var tok struct {
		Token string `json:"token"`
	}
	phone.json(&tok, "device", "request", "--name", "phone")
	laptop.json(&tok, "device", "approve", tok.Token)
	phone.run("device", "install", tok.Token)

	var devs []struct {
		Device string `json:"device"`
		Name   string `json:"name"`
		This   bool   `json:"this"`
	}
	laptop.json(&devs, "device", "list")
	names := map[string]bool{}
	for _, d := range devs {
		names[d.Name] = names[d.Name] || d.This
	}
	if len(devs) != 2 || !names["test-device"] || names["phone"] {
		t.Fatalf("device list = %+v; want test-device (this one) and phone", devs)
	}
	if got := laptop.run("device", "list"); !strings.Contains(got, "phone") || !strings.Contains(got, "(this device)") {
		t.Fatalf("device list, as shown:\n%s", got)
	}

	laptop.run("server", "create", "club", "--hub", hub.URL)
	laptop.run("channel", "create", "club", "general")
	var inv struct {
		Token string `json:"token"`
	}
	laptop.json(&inv, "invite", "create", "club")
	phone.run("join", inv.Token)
	phone.run("send", "club", "general", "from the phone")
	if _, err := laptop.try("device", "revoke", "club", "tablet"); err == nil || !strings.Contains(err.Error(), "device list") {
		t.Fatalf("revoking a device no one has: %v", err)
	}
	laptop.run("device", "revoke", "club", "phone")
	if _, err := phone.try("send", "club", "general", "after the revocation"); err == nil {
		t.Fatal("the revoked phone still posts")
	}
	laptop.run("send", "club", "general", "from the laptop")
}
