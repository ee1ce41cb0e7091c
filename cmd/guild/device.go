package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/guildhall/guildhall/policy"
)

var deviceCommands = []command{
	flagged("device request", nil, "on a new device: print a link request for the identity holder", deviceRequest),
	plain("device approve", []param{word("TOKEN")}, "certify a new device of this identity; prints its certificate", deviceApprove),
	plain("device install", []param{word("TOKEN")}, "on the new device: install the certificate the identity holder approved", deviceInstall),
	plain("device list", nil, "list this identity's devices known here: name, key, expiry, and which one this is", deviceList),
	plain("device revoke", []param{pServer, pDevice}, "revoke one of this identity's devices in a server (and re-key its channels); DEVICE is its name or key", deviceRevoke).fetchingState(),
}

// linkOpts name the new device.
type linkOpts struct{ name string }

func (o *linkOpts) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&o.name, "name", e.deviceName(), "this device's name")
}

func deviceRequest(ctx context.Context, e *env, a *args, o *linkOpts) (any, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	req, err := c.RequestLink(ctx, o.name)
	if err != nil {
		return nil, err
	}
	return tokenOut{Token: req.Encode(), Next: "on the device holding the identity: guild device approve TOKEN"}, nil
}

func deviceApprove(ctx context.Context, e *env, a *args) (any, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	req, err := policy.DecodeLinkRequest(a.word("TOKEN"))
	if err != nil {
		return nil, err
	}
	cert, err := c.LinkDevice(ctx, req)
	if err != nil {
		return nil, err
	}
	return tokenOut{Token: policy.EncodeCertToken(cert), Next: "on the new device: guild device install TOKEN"}, nil
}

func deviceInstall(ctx context.Context, e *env, a *args) (any, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	cert, err := policy.DecodeCertToken(a.word("TOKEN"))
	if err != nil {
		return nil, err
	}
	return message("this device now acts for " + cert.Identity.String()), c.InstallCert(ctx, cert)
}

func deviceRevoke(ctx context.Context, e *env, a *args) (any, error) {
	return message("revoked " + a.device.String()), a.c.RevokeDevice(ctx, a.server, a.device)
}

type deviceOut struct {
	Device  policy.PublicKey `json:"device"`
	Name    string           `json:"name"`
	Issued  time.Time        `json:"issued"`
	Expires time.Time        `json:"expires"`
	This    bool             `json:"this"`
}

type deviceListOut []deviceOut

func (l deviceListOut) Human() string {
	lines := make([]string, len(l))
	for i, d := range l {
		lines[i] = d.line()
	}
	return strings.Join(lines, "\n")
}

func (d deviceOut) line() string {
	this := ""
	if d.This {
		this = "  (this device)"
	}
	return fmt.Sprintf("%-20s %s  expires %s%s", d.Name, d.Device, d.Expires.Format("2006-01-02"), this)
}

func deviceList(ctx context.Context, e *env, a *args) (any, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	devs, err := c.Devices(ctx)
	if err != nil {
		return nil, err
	}
	out := make(deviceListOut, len(devs))
	for i, d := range devs {
		out[i] = deviceOut{Device: d.Device, Name: d.Name, Issued: d.Issued, Expires: d.Expires, This: d.This}
	}
	return out, nil
}
