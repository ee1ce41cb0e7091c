package p2p

import (
	"crypto/ed25519"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func peerIDOf(k ed25519.PrivateKey) (peer.ID, error) {
	priv, err := crypto.UnmarshalEd25519PrivateKey(k)
	if err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(priv)
}
