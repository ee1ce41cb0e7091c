package client

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/guildhall/guildhall/policy"
)

// DeviceInfo is one of this identity's devices, as its certificate says.
type DeviceInfo struct {
	Device  policy.PublicKey
	Name    string
	Issued  time.Time
	Expires time.Time
	This    bool // the device this client runs on
}

// Devices lists this identity's devices whose certificates this client
// has seen (its own, those it approved, those met in servers' state), by
// name.
func (c *Client) Devices(ctx context.Context) ([]DeviceInfo, error) {
	d, err := c.Device()
	if err != nil {
		return nil, err
	}
	certs, err := c.st.devicesOf(ctx, []policy.PublicKey{d.Identity()})
	if err != nil {
		return nil, err
	}
	seen := map[policy.PublicKey]bool{}
	var out []DeviceInfo
	for _, cert := range append([]*policy.DeviceCert{d.Cert}, certs...) {
		if cert == nil || seen[cert.Device] {
			continue
		}
		seen[cert.Device] = true
		out = append(out, DeviceInfo{Device: cert.Device, Name: cert.Name, Issued: time.UnixMilli(cert.Issued).UTC(),
			Expires: time.UnixMilli(cert.Expires).UTC(), This: cert.Device == d.Cert.Device})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || out[i].Name == out[j].Name && out[i].Issued.Before(out[j].Issued)
	})
	return out, nil
}

// ResolveDevice names one of this identity's devices by its key or by its
// name, as device list shows them; a name two devices share is refused.
func (c *Client) ResolveDevice(ctx context.Context, v string) (policy.PublicKey, error) {
	if k, err := policy.ParsePublicKey(v); err == nil {
		return k, nil
	}
	devs, err := c.Devices(ctx)
	if err != nil {
		return policy.PublicKey{}, err
	}
	var found []policy.PublicKey
	for _, d := range devs {
		if d.Name == v {
			found = append(found, d.Device)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return policy.PublicKey{}, fmt.Errorf("%w: no device of yours named %q here (guild device list shows them)", ErrUnknown, v)
	}
	return policy.PublicKey{}, fmt.Errorf("%d of your devices are named %q: give the device's key (guild device list)", len(found), v)
}
