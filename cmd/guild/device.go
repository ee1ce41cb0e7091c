package main

import (
	"context"
	"flag"

	"github.com/guildhall/guildhall/policy"
)

var deviceCommands = []command{
	flagged("device request", nil, "on a new device: print a link request for the identity holder", deviceRequest),
	plain("device approve", []param{word("TOKEN")}, "certify a new device of this identity; prints its certificate", deviceApprove),
	plain("device install", []param{word("TOKEN")}, "on the new device: install the certificate the identity holder approved", deviceInstall),
	plain("device revoke", []param{pServer, pDevice}, "revoke one of this identity's devices in a server (and re-key its channels)", deviceRevoke).fetchingState(),
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
