package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/guildhall/guildhall/client/clienttest"
)

// newClient opens a client in a fresh directory with a new identity.
func newClient(t *testing.T, name string) *Client {
	t.Helper()
	c := emptyClient(t)
	if _, err := c.CreateIdentity(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return c
}

func emptyClient(t *testing.T) *Client {
	t.Helper()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// marker is a plaintext string the infrastructure must never hold.
func marker(t *testing.T, what string) string {
	return fmt.Sprintf("PLAINTEXT-%s-%x", what, rand.Uint64())
}

var profiles = clienttest.Profiles

// hubProc and startHub name the harness in these tests.
type hubProc = clienttest.Hub

func startHub(t *testing.T, profile string) *hubProc { return clienttest.StartHub(t, profile) }
