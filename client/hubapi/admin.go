package hubapi

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// Admin talks to a hub's admin API (an operator's tool).
type Admin struct {
	hub   *Client
	token string
}

// NewAdmin returns a client for a hub's admin listener.
func NewAdmin(url, token string) *Admin { return &Admin{hub: New(url), token: token} }

// Tenants lists the hub's tenants with their usage.
func (a *Admin) Tenants(ctx context.Context) (wire.Tenants, error) {
	var out wire.Tenants
	return out, a.hub.call(ctx, "GET", "/v1/admin/tenants", a.token, nil, &out)
}

// PutTenant creates a tenant or replaces its quota.
func (a *Admin) PutTenant(ctx context.Context, server policy.ID, q wire.Quota) (wire.Tenant, error) {
	var out wire.Tenant
	return out, a.hub.call(ctx, "POST", "/v1/admin/tenants", a.token, wire.TenantRequest{Server: server, Quota: q}, &out)
}

// Tenant returns one tenant, its quota and usage.
func (a *Admin) Tenant(ctx context.Context, server policy.ID) (wire.Tenant, error) {
	var out wire.Tenant
	return out, a.hub.call(ctx, "GET", "/v1/admin/tenants/"+server.String(), a.token, nil, &out)
}

// QuotaUpdate changes some limits of a tenant's quota: a nil field keeps
// its value, a set one replaces it (0: no limit).
type QuotaUpdate = wire.QuotaUpdate

// UpdateQuota changes the limits u names of an existing tenant and keeps
// the others (an Error with code not_found when server is no tenant).
func (a *Admin) UpdateQuota(ctx context.Context, server policy.ID, u QuotaUpdate) (wire.Tenant, error) {
	var out wire.Tenant
	return out, a.hub.call(ctx, "PATCH", "/v1/admin/tenants/"+server.String(), a.token, u, &out)
}

// Suspend suspends (or resumes) a tenant's writes.
func (a *Admin) Suspend(ctx context.Context, server policy.ID, suspend bool) (wire.Tenant, error) {
	op := "resume"
	if suspend {
		op = "suspend"
	}
	var out wire.Tenant
	return out, a.hub.call(ctx, "POST", "/v1/admin/tenants/"+server.String()+"/"+op, a.token, nil, &out)
}

// UsageCSV returns the usage export for billing.
func (a *Admin) UsageCSV(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", a.hub.URL+"/v1/admin/usage?format=csv", nil)
	if err != nil {
		return nil, err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hub.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err == nil && resp.StatusCode != 200 {
		err = &Error{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: strings.TrimSpace(string(b))}
	}
	return b, err
}
