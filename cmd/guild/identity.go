package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/policy"
)

var identityCommands = []command{
	flagged("identity create", nil, "create an identity and certify this device; prints the recovery phrase once", identityCreate),
	plain("identity show", nil, "show this identity and device", identityShow),
	plain("identity phrase", nil, "print the recovery phrase (needs the identity key on this device)", identityPhrase),
	flagged("identity recover", nil, "re-derive the identity from its recovery phrase (read from stdin) on this device", identityRecover),
	flagged("identity export", []param{word("FILE")}, "write the identity key encrypted under a password (GUILD_PASSWORD, else asked twice, not echoed); an existing FILE only with --force", identityExport),
	flagged("identity import", []param{word("FILE")}, "take an exported identity onto this device (password from GUILD_PASSWORD, else stdin)", identityImport),
}

// deviceOpts name this device.
type deviceOpts struct{ name string }

func (o *deviceOpts) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&o.name, "device", e.deviceName(), "this device's name")
}

func identityCreate(ctx context.Context, e *env, a *args, o *deviceOpts) (any, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	id, err := c.CreateIdentity(ctx, o.name)
	if err != nil {
		return nil, err
	}
	d, err := c.Device()
	if err != nil {
		return nil, err
	}
	return identityOut{Identity: id.Public(), Device: policy.KeyOf(d.Keys.Sign), Phrase: id.Phrase()}, nil
}

func identityShow(ctx context.Context, e *env, a *args) (any, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	d, err := c.Device()
	if err != nil {
		return nil, err
	}
	_, holds := c.Identity()
	return identityOut{Identity: d.Identity(), Device: d.Cert.Device, DeviceName: d.Cert.Name, HoldsIdentityKey: holds, Expires: time.UnixMilli(d.Cert.Expires)}, nil
}

func identityPhrase(ctx context.Context, e *env, a *args) (any, error) {
	id, err := identityKey(e)
	if err != nil {
		return nil, err
	}
	return phraseOut(id.Phrase()), nil
}

func identityRecover(ctx context.Context, e *env, a *args, o *deviceOpts) (any, error) {
	line, err := e.readLine()
	if err != nil {
		return nil, err
	}
	id, err := client.IdentityFromPhrase(line)
	if err != nil {
		return nil, err
	}
	return adopt(ctx, e, id, o.name)
}

type exportOpts struct{ force bool }

func (o *exportOpts) register(fs *flag.FlagSet, e *env) {
	fs.BoolVar(&o.force, "force", false, "replace FILE if it exists")
}

func identityExport(ctx context.Context, e *env, a *args, o *exportOpts) (any, error) {
	file := a.word("FILE")
	if _, err := os.Lstat(file); err == nil && !o.force {
		return nil, fmt.Errorf("%s exists: not replaced (an older export may be the only copy of a key); choose another name, or --force", file)
	}
	id, err := identityKey(e)
	if err != nil {
		return nil, err
	}
	pw, err := e.password(true)
	if err != nil {
		return nil, err
	}
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	if id.Servers, err = c.KnownServers(ctx); err != nil { // restored with the identity on import
		return nil, err
	}
	b, err := id.Export(pw)
	if err != nil {
		return nil, err
	}
	// Whole or not at all: a half-written export would be a lost key.
	tmp, err := os.CreateTemp(filepath.Dir(file), ".export-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		return nil, err
	}
	return message("identity written to " + file), nil
}

func identityImport(ctx context.Context, e *env, a *args, o *deviceOpts) (any, error) {
	b, err := os.ReadFile(a.word("FILE"))
	if err != nil {
		return nil, err
	}
	pw, err := e.password(false)
	if err != nil {
		return nil, err
	}
	id, err := client.ImportIdentity(b, pw)
	if err != nil {
		return nil, err
	}
	out, err := adopt(ctx, e, id, o.name)
	if err != nil || len(id.Servers) == 0 {
		return out, err
	}
	n, err := e.c.RestoreServers(ctx, id.Servers)
	if err != nil {
		e.progress("guild: some servers could not be read yet (guild server sync SERVER later): %v\n", err)
	}
	fmt.Fprintf(e.stderr, "restored %d servers from the export\n", n)
	return out, nil
}

// identityKey returns the identity key, which a linked device lacks.
func identityKey(e *env) (client.Identity, error) {
	c, err := e.client()
	if err != nil {
		return client.Identity{}, err
	}
	id, ok := c.Identity()
	if !ok {
		return client.Identity{}, errors.New("this device does not hold the identity key (it was linked)")
	}
	return id, nil
}

// adopt makes this device a device of an identity it was given.
func adopt(ctx context.Context, e *env, id client.Identity, name string) (any, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	if err := c.RestoreIdentity(ctx, id, name); err != nil {
		return nil, err
	}
	d, err := c.Device()
	if err != nil {
		return nil, err
	}
	return identityOut{Identity: id.Public(), Device: d.Cert.Device}, nil
}
