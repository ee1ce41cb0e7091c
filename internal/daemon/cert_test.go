package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// selfSigned writes a certificate with the given serial number and its key.
func selfSigned(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
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
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// A listener serves whichever certificate was loaded last; a failed load
// keeps the previous one.
func TestCertificate(t *testing.T) {
	var c Certificate
	l, err := tls.Listen("tcp", "127.0.0.1:0", c.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() { conn.(*tls.Conn).Handshake(); conn.Close() }()
		}
	}()
	served := func() int64 {
		conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return 0
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	first, second := t.TempDir(), t.TempDir()
	for _, step := range []struct {
		name     string
		dir      string
		serial   int64 // written and loaded; 0: load a missing file
		loadFail bool
		want     int64 // served; 0: the handshake fails
	}{
		{"none loaded", "", 0, false, 0},
		{"the first", first, 1, false, 1},
		{"a missing file", filepath.Join(first, "nope"), 0, true, 1},
		{"the second", second, 2, false, 2},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.dir != "" {
				cf, kf := filepath.Join(step.dir, "cert.pem"), filepath.Join(step.dir, "key.pem")
				if step.serial != 0 {
					cf, kf = selfSigned(t, step.dir, step.serial)
				}
				if err := c.Load(cf, kf); (err != nil) != step.loadFail {
					t.Fatalf("load: %v", err)
				}
			}
			if got := served(); got != step.want {
				t.Fatalf("served serial %d, want %d", got, step.want)
			}
		})
	}
}
