package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate with serial to the files.
func writeCert(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600) != nil ||
		os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600) != nil {
		t.Fatal("writing the certificate")
	}
}

// A certificate renewed in place is served after SIGHUP, to new
// connections, without a restart; a broken one is refused and the
// previous one stays.
func TestSIGHUPReloadsTheCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, 1)
	path := filepath.Join(dir, "hub.yaml")
	cfg := fmt.Sprintf("data_dir: %s\nlisten: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\ntls:\n  cert_file: %s\n  key_file: %s\n", dir, certFile, keyFile)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, api, _, logs := startHubBinary(t, path)
	serial := func() int64 {
		t.Helper()
		c, err := tls.Dial("tcp", strings.TrimPrefix(api, "https://"), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("the hub stopped serving TLS: %v\n%s", err, logs)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 1 {
		t.Fatalf("serving serial %d", s)
	}
	writeCert(t, certFile, keyFile, 2)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, logs, `msg="reloaded the configuration".*TLS certificate`)
	if s := serial(); s != 2 {
		t.Fatalf("after the reload the hub serves serial %d, want the renewed 2", s)
	}
	os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, logs, `level=ERROR msg="reload refused: the TLS certificate does not load`)
	if s := serial(); s != 2 {
		t.Fatalf("after a refused reload the hub serves serial %d", s)
	}
}
