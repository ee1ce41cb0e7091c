package client

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// Client is one device of one identity, with its local store.
type Client struct {
	st  *store
	Now func() time.Time

	mu   sync.Mutex
	id   *Identity // nil when this device does not hold the identity key
	dev  *Device   // nil until the device is certified
	keys *DeviceKeys
	hubs map[string]*hubapi.Client // by URL
}

// Errors of the client.
var (
	ErrNoIdentity  = errors.New("client: no identity here: create or restore one, or link this device")
	ErrNotDurable  = errors.New("client: no eligible hub acknowledged the message")
	ErrNoHub       = errors.New("client: no hub for this server")
	ErrUnknown     = errors.New("client: unknown server or channel")
	ErrNotAccepted = errors.New("client: no hub accepted it")
	// ErrStore wraps every failure of the local store: what it could not
	// keep is never counted as done.
	ErrStore = errors.New("client: local store")
)

// Open opens (creating) the client's store in dir.
func Open(dir string) (*Client, error) {
	st, err := openStore(dir)
	if err != nil {
		return nil, err
	}
	c := &Client{st: st, Now: time.Now, hubs: map[string]*hubapi.Client{}}
	if err := c.loadKeys(context.Background()); err != nil {
		st.close()
		return nil, err
	}
	return c, nil
}

// Close closes the store.
func (c *Client) Close() error { return c.st.close() }

func (c *Client) loadKeys(ctx context.Context) error {
	if seed, err := c.st.get(ctx, "identity"); err != nil {
		return err
	} else if seed != nil {
		c.id = &Identity{Key: ed25519.NewKeyFromSeed(seed)}
	}
	sign, err := c.st.get(ctx, "device.sign")
	if err != nil || sign == nil {
		return err
	}
	enc, err := c.st.get(ctx, "device.enc")
	if err != nil {
		return err
	}
	kem, err := c.st.get(ctx, "device.kem")
	if err != nil {
		return err
	}
	var kemID uint16
	if len(kem) == 2 {
		kemID = binary.BigEndian.Uint16(kem)
	}
	ek, err := encKey(kemID, enc)
	if err != nil {
		return fmt.Errorf("client: this device's encryption key: %w", err)
	}
	c.keys = &DeviceKeys{Sign: ed25519.NewKeyFromSeed(sign), Enc: ek}
	certRaw, err := c.st.get(ctx, "device.cert")
	if err != nil || certRaw == nil {
		return err
	}
	cert, err := policy.ParseDeviceCert(certRaw)
	if err != nil {
		return err
	}
	c.dev = &Device{Keys: *c.keys, Cert: cert}
	return nil
}

func (c *Client) saveDeviceKeys(ctx context.Context, k DeviceKeys) error {
	if err := c.st.put(ctx, "device.sign", k.Sign.Seed()); err != nil {
		return err
	}
	enc, err := k.Enc.Bytes()
	if err != nil {
		return err
	}
	if err := c.st.put(ctx, "device.kem", binary.BigEndian.AppendUint16(nil, k.Enc.KEM().ID())); err != nil {
		return err
	}
	return c.st.put(ctx, "device.enc", enc)
}

// CreateIdentity makes a new identity and certifies this device for it.
func (c *Client) CreateIdentity(ctx context.Context, deviceName string) (Identity, error) {
	id := NewIdentity()
	return id, c.adopt(ctx, id, deviceName)
}

// RestoreIdentity re-derives the identity from its recovery phrase (or
// takes an imported one) and certifies this device for it.
func (c *Client) RestoreIdentity(ctx context.Context, id Identity, deviceName string) error {
	return c.adopt(ctx, id, deviceName)
}

func (c *Client) adopt(ctx context.Context, id Identity, deviceName string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id != nil || c.dev != nil {
		return errors.New("client: this store already holds an identity")
	}
	keys := NewDeviceKeys()
	cert, err := id.Certify(keys.Request(deviceName), c.Now(), 0)
	if err != nil {
		return err
	}
	if err := c.st.put(ctx, "identity", id.Key.Seed()); err != nil {
		return err
	}
	if err := c.saveDeviceKeys(ctx, keys); err != nil {
		return err
	}
	if err := c.st.put(ctx, "device.cert", cert.Raw); err != nil {
		return err
	}
	c.id, c.keys, c.dev = &id, &keys, &Device{Keys: keys, Cert: cert}
	return c.st.addDevice(ctx, cert)
}

// Identity returns the identity key if this device holds it.
func (c *Client) Identity() (Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id == nil {
		return Identity{}, false
	}
	return *c.id, true
}

// Device returns this device, or ErrNoIdentity.
func (c *Client) Device() (*Device, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dev == nil {
		return nil, ErrNoIdentity
	}
	return c.dev, nil
}

// Me returns the identity this device acts for.
func (c *Client) Me() (policy.PublicKey, error) {
	d, err := c.Device()
	if err != nil {
		return policy.PublicKey{}, err
	}
	return d.Identity(), nil
}

// RequestLink prepares this (empty) client to become a device of an
// identity held elsewhere: the request goes to the identity holder, whose
// answer (a certificate) goes to InstallCert.
func (c *Client) RequestLink(ctx context.Context, name string) (LinkRequest, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dev != nil {
		return LinkRequest{}, errors.New("client: this device is already certified")
	}
	if c.keys == nil {
		k := NewDeviceKeys()
		if err := c.saveDeviceKeys(ctx, k); err != nil {
			return LinkRequest{}, err
		}
		c.keys = &k
	}
	return c.keys.Request(name), nil
}

// LinkDevice certifies another device for this identity.
func (c *Client) LinkDevice(ctx context.Context, req LinkRequest) (*policy.DeviceCert, error) {
	id, ok := c.Identity()
	if !ok {
		return nil, ErrNoIdentity
	}
	cert, err := id.Certify(req, c.Now(), 0)
	if err != nil {
		return nil, err
	}
	return cert, c.st.addDevice(ctx, cert)
}

// InstallCert completes a link: the certificate must be for this device.
func (c *Client) InstallCert(ctx context.Context, cert *policy.DeviceCert) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil || cert.Device != policy.KeyOf(c.keys.Sign) || string(cert.EncKey) != string(c.keys.Enc.PublicKey().Bytes()) {
		return errors.New("client: the certificate is not for this device's keys")
	}
	if err := c.st.put(ctx, "device.cert", cert.Raw); err != nil {
		return err
	}
	c.dev = &Device{Keys: *c.keys, Cert: cert}
	return c.st.addDevice(ctx, cert)
}

// hub returns the client for a hub URL.
func (c *Client) hub(url string) *hubapi.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.hubs[url]
	if !ok {
		h = hubapi.New(url)
		c.hubs[url] = h
	}
	return h
}

// Hubs returns the hubs known for a server.
func (c *Client) Hubs(ctx context.Context, server policy.ID) ([]string, error) {
	return c.st.hubs(ctx, server)
}

// AddHub records a hub for a server (invites and the user bring them).
func (c *Client) AddHub(ctx context.Context, server policy.ID, url string) error {
	return c.st.addServer(ctx, server, []string{url})
}

// PreferHub puts a hub first among a server's hubs: reads try it first
// and fall back to the others (a member's home node, typically).
func (c *Client) PreferHub(ctx context.Context, server policy.ID, url string) error {
	hubs, err := c.st.hubs(ctx, server)
	if err != nil {
		return err
	}
	order := []string{url}
	for _, h := range hubs {
		if h != url {
			order = append(order, h)
		}
	}
	return c.st.setHubs(ctx, server, order)
}

// Servers lists the servers this client knows.
func (c *Client) Servers(ctx context.Context) ([]policy.ID, error) { return c.st.servers(ctx) }

// BringHub records a hub for a server and, if the hub does not host the
// server yet (a member's home node, a hub just granted storage), publishes
// to it the state log this client holds, so that it admits the server as
// its admission mode allows and serves it from then on. It reports
// whether the log was brought. The hub is recorded even when it cannot be
// reached or refuses: the error says so.
func (c *Client) BringHub(ctx context.Context, server policy.ID, url string) (brought bool, err error) {
	if err := c.AddHub(ctx, server, url); err != nil {
		return false, err
	}
	d, err := c.Device()
	if err != nil {
		return false, err
	}
	h := c.hub(url)
	token, err := h.Login(ctx, d)
	if err != nil {
		return false, err
	}
	if _, err = h.Events(ctx, token, server, 0); !IsCode(err, wire.CodeNotHosted) {
		return false, err
	}
	if err := c.publishWithLog(ctx, url, server, nil); err != nil {
		return false, err
	}
	return true, nil
}
