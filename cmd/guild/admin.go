package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"

	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/wire"
)

// adminCommands are the operator's, against a hub's admin listener.
var adminCommands = []command{
	flagged("admin tenants", nil, "operator: list a hub's tenants and usage", adminTenants),
	flagged("admin quota", []param{pServerID}, "operator: show a tenant's quota, or change the limits given (--bytes, --envelopes, --blobs: a number or unlimited; the others stay) and its customer --label, creating the tenant if new", adminQuota),
	flagged("admin suspend", []param{pServerID}, "operator: suspend a tenant's writes", adminSuspend),
	flagged("admin resume", []param{pServerID}, "operator: resume a tenant's writes", adminResume),
	flagged("admin usage", nil, "operator: usage of every tenant as CSV, or with --ledger the samples over time with egress (--from, --to, --format csv|jsonl), for billing; --label keeps one customer's rows", adminUsage),
	flagged("admin tenant delete", []param{pServerID}, "operator: delete a tenant and everything it stores, blobs included (--yes to confirm)", adminTenantDelete),
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
	bytes, envelopes, blobs quotaFlag
	label                   labelFlag
}

func (o *quotaOpts) register(fs *flag.FlagSet, e *env) {
	o.adminOpts.register(fs, e)
	fs.Var(&o.bytes, "bytes", "limit of bytes: a number, or unlimited (not given: unchanged)")
	fs.Var(&o.envelopes, "envelopes", "limit of envelopes: a number, or unlimited (not given: unchanged)")
	fs.Var(&o.blobs, "blobs", "limit of blobs: a number, or unlimited (not given: unchanged)")
	fs.Var(&o.label, "label", "the tenant's customer label, shown in listings and the usage ledger (\"\" clears it; not given: unchanged)")
}

// quotaFlag is one limit of a quota as given on the command line: unset
// (keep it), a number, or "unlimited". 0 is refused: it would read as "no
// room" to some and "no limit" to others.
type quotaFlag struct{ v *uint64 }

func (q *quotaFlag) String() string {
	switch {
	case q == nil || q.v == nil:
		return ""
	case *q.v == 0:
		return "unlimited"
	}
	return strconv.FormatUint(*q.v, 10)
}

func (q *quotaFlag) Set(s string) error {
	var v uint64
	if s != "unlimited" {
		n, err := strconv.ParseUint(s, 10, 64)
		switch {
		case err != nil:
			return fmt.Errorf("%q: want a number or unlimited", s)
		case n == 0:
			return errors.New("0 is ambiguous: give a limit above 0, or unlimited")
		}
		v = n
	}
	q.v = &v
	return nil
}

// adminQuota shows a tenant's quota (no limit given), changes the limits
// given and keeps the others, or creates the tenant with the limits given
// (the others unlimited).
func adminQuota(ctx context.Context, e *env, a *args, o *quotaOpts) (any, error) {
	admin := o.admin()
	if o.bytes.v == nil && o.envelopes.v == nil && o.blobs.v == nil && o.label.v == nil {
		t, err := admin.Tenant(ctx, a.server)
		return tenantsOut{Tenants: []wire.Tenant{t}}, err
	}
	t, err := admin.UpdateQuota(ctx, a.server, hubapi.QuotaUpdate{Bytes: o.bytes.v, Envelopes: o.envelopes.v, Blobs: o.blobs.v, Label: o.label.v})
	if herr := (*hubapi.Error)(nil); errors.As(err, &herr) && herr.Code == "not_found" {
		val := func(q quotaFlag) uint64 {
			if q.v == nil {
				return 0
			}
			return *q.v
		}
		t, err = o.createTenant(ctx, a.server, wire.Quota{Bytes: val(o.bytes), Envelopes: val(o.envelopes), Blobs: val(o.blobs)}, o.label.v)
	}
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
