// Package storagetest is the conformance suite of the storage contract. Every
// backend's tests call RunMeta (tenants, state logs, envelopes, blob
// references) and RunBlobs (blob stores) with a function that opens a fresh,
// empty store; a backend passes the contract when both pass.
//
// Backends that need a server read its address from the environment
// (GUILDHALL_TEST_POSTGRES, GUILDHALL_TEST_S3...): Require fails the test when
// CI=true and the variable is missing, and otherwise skips it saying how to
// start the component.
package storagetest

import (
	"crypto/sha256"
	"encoding/binary"
	"os"
	"testing"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// Meta is what RunMeta tests: one store implementing the metadata contracts.
type Meta = storage.Meta

// Require returns the value of an environment variable naming a test
// component. With CI=true a missing one fails the test; locally the test is
// skipped with the command that provides it.
func Require(t testing.TB, name string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not set: in CI every test component must be present (deploy/test.sh starts them)", name)
	}
	t.Skipf("%s is not set: run the suite with ./deploy/test.sh, or start the components with: eval \"$(deploy/testenv.sh up)\"", name)
	return ""
}

// ServerID returns a deterministic server ID for a test name.
func ServerID(name string) policy.ID { return policy.Sum([]byte("server " + name)) }

// ChannelID returns a deterministic channel ID for a test name.
func ChannelID(name string) policy.ID { return policy.Sum([]byte("channel " + name)) }

// Envelope returns a deterministic envelope record of size bytes: its Raw
// is pseudo-random bytes and its ID their content ID, as a hub would store
// a verified envelope. Time is n seconds after a fixed epoch.
func Envelope(server, channel policy.ID, n int, size int) storage.Envelope {
	raw := make([]byte, size)
	var seed [72]byte // server, channel and n: distinct records never share an ID
	copy(seed[:32], server[:])
	copy(seed[32:64], channel[:])
	binary.BigEndian.PutUint64(seed[64:], uint64(n))
	block := sha256.Sum256(seed[:])
	for i := 0; i < size; i += len(block) {
		copy(raw[i:], block[:])
		block = sha256.Sum256(block[:])
	}
	return storage.Envelope{
		ID: policy.Sum(raw), Server: server, Channel: channel, Sender: policy.PublicKey(sha256.Sum256([]byte("sender"))),
		Time: 1_767_225_600_000 + int64(n)*1000, Raw: raw,
	}
}
