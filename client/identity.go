package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/guildhall/guildhall/policy"
)

// Identity is a person: an Ed25519 key generated on their device, with no
// registration anywhere. Its public key is who they are in every server.
type Identity struct {
	Key ed25519.PrivateKey
	// Servers travel with an exported identity (encrypted with it), so
	// that a device it is imported on knows the servers and their hubs.
	Servers []ServerHubs
}

// ServerHubs is a server this identity belongs to and the hubs it is
// reached at.
type ServerHubs struct {
	Server policy.ID `cbor:"1,keyasint"`
	Hubs   []string  `cbor:"2,keyasint"`
}

// NewIdentity generates an identity.
func NewIdentity() Identity {
	var seed [32]byte
	rand.Read(seed[:])
	return Identity{Key: ed25519.NewKeyFromSeed(seed[:])}
}

// Public returns the identity's public key.
func (id Identity) Public() policy.PublicKey { return policy.KeyOf(id.Key) }

// Errors of identity handling.
var (
	ErrBadPhrase   = errors.New("client: not a valid recovery phrase")
	ErrBadPassword = errors.New("client: wrong password or damaged key file")
)

// phraseWords is the recovery phrase's alphabet: 2,048 pronounceable words
// (consonant, vowel, consonant, vowel, optional final n), 11 bits each.
var phraseWords = func() []string {
	const cons, vows = "bdfghjklmnprstvz", "aeio"
	words := make([]string, 0, 2048)
	for i := range 2048 {
		w := []byte{cons[i>>7&15], vows[i>>5&3], cons[i>>1&15], vows[(i>>5&3+i&1)&3]}
		if i&1 == 1 {
			w = append(w, 'n')
		}
		words = append(words, string(w))
	}
	return words
}()

var phraseIndex = func() map[string]int {
	m := make(map[string]int, len(phraseWords))
	for i, w := range phraseWords {
		m[w] = i
	}
	return m
}()

// Phrase returns the 24-word recovery phrase the identity key can be
// re-derived from: the key's 32-byte seed and an 8-bit checksum (the first
// byte of its SHA-256), 11 bits per word. Anyone holding it is the identity.
func (id Identity) Phrase() string {
	seed := id.Key.Seed()
	sum := sha256.Sum256(seed)
	bits := append(append([]byte{}, seed...), sum[0]) // 264 bits
	words := make([]string, 24)
	for i := range words {
		v := 0
		for b := range 11 {
			pos := i*11 + b
			v = v<<1 | int(bits[pos/8]>>(7-pos%8)&1)
		}
		words[i] = phraseWords[v]
	}
	return strings.Join(words, " ")
}

// IdentityFromPhrase re-derives an identity from its recovery phrase.
func IdentityFromPhrase(phrase string) (Identity, error) {
	words := strings.Fields(strings.ToLower(phrase))
	if len(words) != 24 {
		return Identity{}, fmt.Errorf("%w: %d words, want 24", ErrBadPhrase, len(words))
	}
	bits := make([]byte, 33)
	for i, w := range words {
		v, ok := phraseIndex[w]
		if !ok {
			return Identity{}, fmt.Errorf("%w: unknown word %q", ErrBadPhrase, w)
		}
		for b := range 11 {
			if v>>(10-b)&1 == 1 {
				pos := i*11 + b
				bits[pos/8] |= 1 << (7 - pos%8)
			}
		}
	}
	if sum := sha256.Sum256(bits[:32]); sum[0] != bits[32] {
		return Identity{}, fmt.Errorf("%w: checksum mismatch (a word is wrong or out of order)", ErrBadPhrase)
	}
	return Identity{Key: ed25519.NewKeyFromSeed(bits[:32])}, nil
}

// keyFile is the encrypted export of an identity.
type keyFile struct {
	Version int    `cbor:"1,keyasint"`
	Time    uint32 `cbor:"2,keyasint"` // Argon2id passes
	Memory  uint32 `cbor:"3,keyasint"` // KiB
	Threads uint8  `cbor:"4,keyasint"`
	Salt    []byte `cbor:"5,keyasint"`
	Nonce   []byte `cbor:"6,keyasint"`
	Sealed  []byte `cbor:"7,keyasint"` // XChaCha20-Poly1305 of the seed, AAD = public key
	Public  []byte `cbor:"8,keyasint"`
	// The servers (CBOR [ServerHubs]), sealed like the seed under the same
	// key with their own nonce; absent in files without them.
	ServersNonce  []byte `cbor:"9,keyasint,omitempty"`
	ServersSealed []byte `cbor:"10,keyasint,omitempty"`
}

const pemType = "GUILDHALL IDENTITY"

// Export encrypts the identity under a password (Argon2id, 64 MiB, 3
// passes; XChaCha20-Poly1305) as a PEM text file.
func (id Identity) Export(password string) ([]byte, error) {
	if password == "" {
		return nil, errors.New("client: an exported identity needs a password")
	}
	kf := keyFile{Version: 1, Time: 3, Memory: 64 << 10, Threads: 2, Salt: make([]byte, 16), Nonce: make([]byte, chacha20poly1305.NonceSizeX)}
	rand.Read(kf.Salt)
	rand.Read(kf.Nonce)
	kf.Public = id.Key.Public().(ed25519.PublicKey)
	aead, err := chacha20poly1305.NewX(argon2.IDKey([]byte(password), kf.Salt, kf.Time, kf.Memory, kf.Threads, 32))
	if err != nil {
		return nil, err
	}
	kf.Sealed = aead.Seal(nil, kf.Nonce, id.Key.Seed(), kf.Public)
	if len(id.Servers) > 0 {
		list, err := cbor.Marshal(id.Servers)
		if err != nil {
			return nil, err
		}
		kf.ServersNonce = make([]byte, chacha20poly1305.NonceSizeX)
		rand.Read(kf.ServersNonce)
		kf.ServersSealed = aead.Seal(nil, kf.ServersNonce, list, kf.Public)
	}
	b, err := cbor.Marshal(kf)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: b}), nil
}

// ImportIdentity decrypts an exported identity.
func ImportIdentity(file []byte, password string) (Identity, error) {
	blk, _ := pem.Decode(file)
	if blk == nil || blk.Type != pemType {
		return Identity{}, fmt.Errorf("%w: not a %s file", ErrBadPassword, pemType)
	}
	var kf keyFile
	if err := cbor.Unmarshal(blk.Bytes, &kf); err != nil || kf.Version != 1 || kf.Memory > 1<<20 || kf.Time > 16 || kf.Threads == 0 {
		return Identity{}, fmt.Errorf("%w: unreadable key file", ErrBadPassword)
	}
	aead, err := chacha20poly1305.NewX(argon2.IDKey([]byte(password), kf.Salt, kf.Time, kf.Memory, kf.Threads, 32))
	if err != nil || len(kf.Nonce) != aead.NonceSize() {
		return Identity{}, ErrBadPassword
	}
	seed, err := aead.Open(nil, kf.Nonce, kf.Sealed, kf.Public)
	if err != nil || len(seed) != ed25519.SeedSize {
		return Identity{}, ErrBadPassword
	}
	id := Identity{Key: ed25519.NewKeyFromSeed(seed)}
	if len(kf.ServersSealed) > 0 {
		list, err := aead.Open(nil, kf.ServersNonce, kf.ServersSealed, kf.Public)
		if err != nil || cbor.Unmarshal(list, &id.Servers) != nil {
			return Identity{}, fmt.Errorf("%w: the server list does not open", ErrBadPassword)
		}
	}
	return id, nil
}

// KnownServers returns the servers this client knows, with their hubs: what
// an export carries.
func (c *Client) KnownServers(ctx context.Context) ([]ServerHubs, error) {
	ids, err := c.st.servers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ServerHubs, 0, len(ids))
	for _, id := range ids {
		hubs, err := c.st.hubs(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, ServerHubs{Server: id, Hubs: hubs})
	}
	return out, nil
}

// RestoreServers makes servers known here again (an imported identity's)
// and reads each one's state from its hubs. A server whose hubs do not
// answer stays known, to be synced later; the errors are returned joined.
func (c *Client) RestoreServers(ctx context.Context, servers []ServerHubs) (int, error) {
	var errs []error
	n := 0
	for _, s := range servers {
		if len(s.Hubs) == 0 {
			continue
		}
		if err := c.st.addServer(ctx, s.Server, s.Hubs); err != nil {
			return n, err
		}
		n++
		if _, err := c.SyncState(ctx, s.Server); err != nil {
			errs = append(errs, fmt.Errorf("server %s: %w", s.Server, err))
		}
	}
	return n, errors.Join(errs...)
}
