package client

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/guildhall/guildhall/client/clienttest"
	"github.com/guildhall/guildhall/policy"
)

var updateVectors = flag.Bool("update", false, "rewrite testdata/hybrid_seal.json")

// New devices get post-quantum hybrid keys; a device made before, with an
// X25519 key, reads in the same channel; both keep their keys across a
// restart of the client.
func TestHybridAndX25519DevicesBothRead(t *testing.T) {
	h := clienttest.StartHub(t, "sqlite")
	dir := t.TempDir()
	phone := must[*Client](t)(Open(dir))
	must[Identity](t)(phone.CreateIdentity(ctx, "alice-phone"))
	if d := must[*Device](t)(phone.Device()); d.Cert.KEM != policy.KEMMLKEM768X25519 || len(d.Cert.EncKey) != 1216 {
		t.Fatalf("a new device's certificate names kem 0x%04x with a %d-byte key, want ML-KEM-768+X25519", d.Cert.KEM, len(d.Cert.EncKey))
	}
	server := must[policy.ID](t)(phone.CreateServer(ctx, "club", []string{h.URL}, ServerOptions{}))
	general := must[policy.ID](t)(phone.CreateChannel(ctx, server, policy.ChannelCreate{Name: "general", Durability: policy.Replicated}))

	// An older device: its encryption key is X25519.
	laptop := emptyClient(t)
	_, sign, _ := ed25519.GenerateKey(rand.Reader)
	old := must[hpke.PrivateKey](t)(hpke.DHKEM(ecdh.X25519()).GenerateKey())
	laptop.keys = &DeviceKeys{Sign: sign, Enc: old}
	ok(t, laptop.saveDeviceKeys(ctx, *laptop.keys))
	req := must[LinkRequest](t)(policy.DecodeLinkRequest(must[LinkRequest](t)(laptop.RequestLink(ctx, "alice-laptop")).Encode()))
	cert := must[*policy.DeviceCert](t)(phone.LinkDevice(ctx, req))
	if cert.KEM != policy.KEMX25519 {
		t.Fatalf("the laptop's certificate names kem 0x%04x", cert.KEM)
	}
	ok(t, laptop.InstallCert(ctx, cert))
	ok(t, laptop.AddHub(ctx, server, h.URL))
	bob := newClient(t, "bob")
	must[policy.ID](t)(bob.Join(ctx, must[string](t)(phone.Invite(ctx, server, 1, time.Hour, nil, nil))))

	must[*Sent](t)(phone.Send(ctx, server, general, "to both kinds of key"))
	must[int](t)(laptop.SyncState(ctx, server))
	must[*Sent](t)(laptop.Send(ctx, server, general, "from the x25519 laptop"))
	want := []string{"to both kinds of key", "from the x25519 laptop"}
	for name, c := range map[string]*Client{"the x25519 laptop": laptop, "bob (hybrid)": bob} {
		if read, _ := readable(t, c, server, general); !slices.Equal(read, want) {
			t.Fatalf("%s reads %q", name, read)
		}
	}
	// Reopened, the phone still opens the channel's keys.
	ok(t, phone.Close())
	again := must[*Client](t)(Open(dir))
	defer again.Close()
	if read, _ := readable(t, again, server, general); !slices.Equal(read, want) {
		t.Fatalf("the reopened phone reads %q", read)
	}
}

// hybridVector is a sealed epoch key for a hybrid device, for other
// implementations to open: HPKE base mode, KEM ML-KEM-768+X25519 (0x647a),
// HKDF-SHA256, AES-256-GCM, info as bundleInfo.
type hybridVector struct {
	KEM        string `json:"kem"`
	PrivateKey string `json:"private_key"` // the 32-byte seed (SerializePrivateKey)
	PublicKey  string `json:"public_key"`  // 1216 bytes
	Server     string `json:"server"`
	Channel    string `json:"channel"`
	Epoch      uint64 `json:"epoch"`
	KeyID      string `json:"key_id"`
	Info       string `json:"info"`
	Key        string `json:"key"`    // the epoch key (plaintext)
	Sealed     string `json:"sealed"` // enc || ciphertext, as a bundle entry's sealed field
	Bundle     string `json:"bundle"` // the whole bundle payload (first byte 2) holding that entry
}

func TestHybridSealVector(t *testing.T) {
	path := filepath.Join("testdata", "hybrid_seal.json")
	if *updateVectors {
		priv := must[hpke.PrivateKey](t)(hpke.MLKEM768X25519().GenerateKey())
		server, channel := policy.Sum([]byte("vector server")), policy.Sum([]byte("vector channel"))
		k := newEpochKey(7)
		cert := &policy.DeviceCert{DeviceCertBody: policy.DeviceCertBody{Device: policy.KeyOf(ed25519.NewKeyFromSeed(make([]byte, 32))), KEM: policy.KEMMLKEM768X25519, EncKey: priv.PublicKey().Bytes()}}
		payloads := must[[][]byte](t)(sealBundles(k, server, channel, []*policy.DeviceCert{cert}))
		b, _, _, err := parseBundle(payloads[0])
		ok(t, err)
		seed := must[[]byte](t)(priv.Bytes())
		v := hybridVector{KEM: "0x647a", PrivateKey: hex.EncodeToString(seed), PublicKey: hex.EncodeToString(priv.PublicKey().Bytes()),
			Server: hex.EncodeToString(server[:]), Channel: hex.EncodeToString(channel[:]), Epoch: k.Epoch, KeyID: hex.EncodeToString(k.ID[:]),
			Info: hex.EncodeToString(bundleInfo(server, channel, k.Epoch, k.ID)), Key: hex.EncodeToString(k.Key),
			Sealed: hex.EncodeToString(b.Entries[0].Sealed), Bundle: hex.EncodeToString(payloads[0])}
		out, _ := json.MarshalIndent(v, "", "  ")
		ok(t, os.WriteFile(path, append(out, '\n'), 0o644))
	}
	var v hybridVector
	ok(t, json.Unmarshal(must[[]byte](t)(os.ReadFile(path)), &v))
	unhex := func(s string) []byte { return must[[]byte](t)(hex.DecodeString(s)) }
	priv := must[hpke.PrivateKey](t)(encKey(policy.KEMMLKEM768X25519, unhex(v.PrivateKey)))
	if hex.EncodeToString(priv.PublicKey().Bytes()) != v.PublicKey {
		t.Fatal("the vector's private key does not derive its public key")
	}
	key := must[[]byte](t)(hpke.Open(priv, hpke.HKDFSHA256(), hpke.AES256GCM(), unhex(v.Info), unhex(v.Sealed)))
	if hex.EncodeToString(key) != v.Key {
		t.Fatal("the sealed entry opens to another key")
	}
	sign := ed25519.NewKeyFromSeed(make([]byte, 32))
	k, opened, err := openBundle(DeviceKeys{Sign: sign, Enc: priv}, policy.ID(unhex(v.Server)), policy.ID(unhex(v.Channel)), unhex(v.Bundle))
	if err != nil || !opened || hex.EncodeToString(k.Key) != v.Key || k.Epoch != v.Epoch {
		t.Fatalf("the vector's bundle does not open: %v, %v", opened, err)
	}
}
