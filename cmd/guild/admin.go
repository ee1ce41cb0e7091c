package main

import (
	"context"
	"flag"
	"strings"

	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/wire"
)

// adminCommands are the operator's, against a hub's admin listener.
var adminCommands = []command{
	flagged("admin tenants", nil, "operator: list a hub's tenants and usage", adminTenants),
	flagged("admin quota", []param{pServerID}, "operator: create a tenant or set its quota (--bytes, --envelopes, --blobs)", adminQuota),
	flagged("admin suspend", []param{pServerID}, "operator: suspend a tenant's writes", adminSuspend),
	flagged("admin resume", []param{pServerID}, "operator: resume a tenant's writes", adminResume),
	flagged("admin usage", nil, "operator: usage of every tenant as CSV, for billing", adminUsage),
}

// adminOpts say which hub's admin API to use.
type adminOpts struct{ url, token string }

func (o *adminOpts) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&o.url, "admin", e.envOr("GUILD_ADMIN_URL", "http://127.0.0.1:7421"), "the hub's admin URL (or GUILD_ADMIN_URL)")
	fs.StringVar(&o.token, "token", e.getenv("GUILD_ADMIN_TOKEN"), "admin token (or GUILD_ADMIN_TOKEN)")
}

func (o *adminOpts) admin() *hubapi.Admin { return hubapi.NewAdmin(o.url, o.token) }

func adminTenants(ctx context.Context, e *env, a *args, o *adminOpts) (any, error) {
	t, err := o.admin().Tenants(ctx)
	return tenantsOut(t), err
}

type quotaOpts struct {
	adminOpts
	bytes, envelopes, blobs uint64
}

func (o *quotaOpts) register(fs *flag.FlagSet, e *env) {
	o.adminOpts.register(fs, e)
	fs.Uint64Var(&o.bytes, "bytes", 0, "bytes (0: unlimited)")
	fs.Uint64Var(&o.envelopes, "envelopes", 0, "envelopes (0: unlimited)")
	fs.Uint64Var(&o.blobs, "blobs", 0, "blobs (0: unlimited)")
}

func adminQuota(ctx context.Context, e *env, a *args, o *quotaOpts) (any, error) {
	t, err := o.admin().PutTenant(ctx, a.server, wire.Quota{Bytes: o.bytes, Envelopes: o.envelopes, Blobs: o.blobs})
	return tenantsOut{Tenants: []wire.Tenant{t}}, err
}

func adminSuspend(ctx context.Context, e *env, a *args, o *adminOpts) (any, error) {
	t, err := o.admin().Suspend(ctx, a.server, true)
	return tenantsOut{Tenants: []wire.Tenant{t}}, err
}

func adminResume(ctx context.Context, e *env, a *args, o *adminOpts) (any, error) {
	t, err := o.admin().Suspend(ctx, a.server, false)
	return tenantsOut{Tenants: []wire.Tenant{t}}, err
}

func adminUsage(ctx context.Context, e *env, a *args, o *adminOpts) (any, error) {
	b, err := o.admin().UsageCSV(ctx)
	return message(strings.TrimSpace(string(b))), err
}
