package client

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// Admin talks to a hub's admin API (an operator's tool).
type Admin struct {
	hub   *Hub
	token string
}

// NewAdmin returns a client for a hub's admin listener.
func NewAdmin(url, token string) *Admin { return &Admin{hub: NewHub(url), token: token} }

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
		err = &HubError{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: strings.TrimSpace(string(b))}
	}
	return b, err
}

// TURNCredentials returns time-limited TURN credentials for a relay that
// shares secret, in the TURN REST API form coturn's static-auth-secret
// accepts: username "expiry:user" (expiry in Unix seconds), password the
// base64 HMAC-SHA1 of the username under the secret.
func TURNCredentials(secret, user string, ttl time.Duration, now time.Time) (username, password string, err error) {
	if secret == "" {
		return "", "", fmt.Errorf("client: a TURN secret is required")
	}
	if strings.Contains(user, ":") {
		return "", "", fmt.Errorf("client: a TURN user name may not contain ':'")
	}
	username = strconv.FormatInt(now.Add(ttl).Unix(), 10)
	if user != "" {
		username += ":" + user
	}
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}
