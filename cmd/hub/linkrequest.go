package main

import (
	"crypto/ecdh"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/guildhall/guildhall/internal/nodekey"
	"github.com/guildhall/guildhall/policy"
)

// linkRequest prints the request a member approves ("guild device approve")
// to make this hub their home node: the node key as a device, with an
// encryption key derived from it (a hub never decrypts; the certificate
// format needs one).
func linkRequest(s settings, stdout io.Writer) error {
	key, _, err := nodekey.Load(s.NodeKeyFile)
	if err != nil {
		return err
	}
	seed := sha256.Sum256(append([]byte("guildhall/v1/hub-enc-key"), key.Seed()...))
	enc, err := ecdh.X25519().NewPrivateKey(seed[:])
	if err != nil {
		return err
	}
	req := policy.LinkRequest{Device: policy.KeyOf(key), EncKey: enc.PublicKey().Bytes(), Name: "home node"}
	fmt.Fprintf(stdout, "%s\n\napprove it with: guild device approve TOKEN\nthen set home.owner_cert to the certificate it prints\n", req.Encode())
	return nil
}
