package daemon

import (
	"crypto/tls"
	"sync/atomic"
)

// Certificate is a TLS certificate that can be replaced (the relay reloads it on SIGHUP) while
// listeners use it: connections made after a Load get the new one. The
// zero value holds none. It is safe for concurrent use.
type Certificate struct {
	cur atomic.Pointer[tls.Certificate]
}

// Load reads a PEM certificate chain and key and makes them current. On
// error the previous certificate stays.
func (c *Certificate) Load(certFile, keyFile string) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	c.cur.Store(&cert)
	return nil
}

// TLSConfig returns a server configuration (TLS 1.2 or later) that serves
// the current certificate.
func (c *Certificate) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.cur.Load(), nil }}
}
