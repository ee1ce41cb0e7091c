package httpapi

import (
	"crypto/subtle"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/wire"
)

// NewAdmin returns the operator's API (docs/API.md, "Admin API"): tenants,
// quotas, labels, suspension, deletion, usage and its ledger for billing, /metrics from gatherer, and the
// health endpoints, each a call of the service's tenancy methods. When
// token is set every /v1/admin request, the profiles and /metrics must
// carry it as a bearer token (metrics name the hub's load, its limits and
// who it refuses: nothing for a neighbour on the network to read); only
// /healthz and /readyz stay open, for probes. Serve it on its own listener
// either way.
func NewAdmin(svc *hub.Service, token string, gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	auth := func(h handlerFunc) http.HandlerFunc {
		checked := audited(svc, func(w http.ResponseWriter, r *http.Request) error {
			if token != "" {
				if err := adminAuth(r.Header.Get("Authorization"), token); err != nil {
					return err
				}
			}
			return h(w, r)
		})
		return func(w http.ResponseWriter, r *http.Request) {
			err := checked(w, r)
			if err != nil {
				we := wireError(err)
				writeError(w, wire.Status(we.Code), we)
			}
		}
	}
	registerOperator(mux, auth, svc)
	mux.HandleFunc("GET /v1/admin/tenants", auth(func(w http.ResponseWriter, r *http.Request) error {
		return adminTenants(w, r, svc)
	}))
	mux.HandleFunc("POST /v1/admin/tenants", auth(func(w http.ResponseWriter, r *http.Request) error {
		var in wire.TenantRequest
		if err := decodeBody(r, 64<<10, &in); err != nil {
			return err
		}
		if err := svc.PutTenant(r.Context(), in.Server, storage.Quota(in.Quota), in.Label); err != nil {
			return err
		}
		return adminTenant(w, r, svc, in.Server, http.StatusCreated)
	}))
	var patching sync.Mutex // a PATCH reads the quota and writes it back: one at a time in this process
	mux.HandleFunc("PATCH /v1/admin/tenants/{server}", auth(func(w http.ResponseWriter, r *http.Request) error {
		server, err := pathID(r, "server")
		if err != nil {
			return err
		}
		var in wire.QuotaUpdate
		if err := decodeBody(r, 64<<10, &in); err != nil {
			return err
		}
		patching.Lock()
		defer patching.Unlock()
		t, err := svc.Tenant(r.Context(), server)
		if err != nil {
			return err
		}
		q := t.Quota
		for _, f := range []struct {
			in  *uint64
			dst *uint64
		}{{in.Bytes, &q.Bytes}, {in.Envelopes, &q.Envelopes}, {in.Blobs, &q.Blobs}} {
			if f.in != nil {
				*f.dst = *f.in
			}
		}
		if err := svc.PutTenant(r.Context(), server, q, in.Label); err != nil {
			return err
		}
		return adminTenant(w, r, svc, server, http.StatusOK)
	}))
	mux.HandleFunc("GET /v1/admin/tenants/{server}", auth(func(w http.ResponseWriter, r *http.Request) error {
		server, err := pathID(r, "server")
		if err != nil {
			return err
		}
		return adminTenant(w, r, svc, server, http.StatusOK)
	}))
	for _, op := range []struct {
		path    string
		suspend bool
	}{{"suspend", true}, {"resume", false}} {
		mux.HandleFunc("POST /v1/admin/tenants/{server}/"+op.path, auth(func(w http.ResponseWriter, r *http.Request) error {
			server, err := pathID(r, "server")
			if err != nil {
				return err
			}
			if err := svc.Suspend(r.Context(), server, op.suspend); err != nil {
				return err
			}
			return adminTenant(w, r, svc, server, http.StatusOK)
		}))
	}
	mux.HandleFunc("GET /v1/admin/usage", auth(func(w http.ResponseWriter, r *http.Request) error {
		if r.URL.Query().Get("format") != "csv" {
			return adminTenants(w, r, svc)
		}
		ts, now, err := svc.Tenants(r.Context())
		if err != nil {
			return err
		}
		at := time.UnixMilli(now).UTC().Format(time.RFC3339)
		w.Header().Set("Content-Type", "text/csv")
		cw := csv.NewWriter(w)
		cw.Write([]string{"at", "server", "bytes", "envelopes", "blobs", "quota_bytes", "quota_envelopes", "quota_blobs", "suspended", "label"})
		u := func(v uint64) string { return strconv.FormatUint(v, 10) }
		for _, t := range ts {
			cw.Write([]string{at, t.Server.String(), u(t.Usage.Bytes), u(t.Usage.Envelopes), u(t.Usage.Blobs),
				u(t.Quota.Bytes), u(t.Quota.Envelopes), u(t.Quota.Blobs), strconv.FormatBool(t.Suspended), t.Label})
		}
		cw.Flush()
		return nil
	}))
	billingRoutes(mux, auth, svc)
	// Profiles, for operators measuring their own hub (behind the token).
	mux.HandleFunc("GET /debug/pprof/", auth(func(w http.ResponseWriter, r *http.Request) error { pprof.Index(w, r); return nil }))
	mux.HandleFunc("GET /debug/pprof/profile", auth(func(w http.ResponseWriter, r *http.Request) error { pprof.Profile(w, r); return nil }))
	if gatherer != nil {
		metrics := promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})
		mux.HandleFunc("GET /metrics", auth(func(w http.ResponseWriter, r *http.Request) error { metrics.ServeHTTP(w, r); return nil }))
	}
	health(mux, svc)
	return mux
}

// adminAuth checks an admin request's Authorization header against the
// token, telling an operator who sent none from one whose token is wrong
// (both unauthenticated).
func adminAuth(header, token string) error {
	got, ok := strings.CutPrefix(header, "Bearer ")
	switch {
	case header == "":
		return fmt.Errorf("%w: this admin API needs the admin token: send Authorization: Bearer <token> (guild admin --token, or GUILD_ADMIN_TOKEN)", hub.ErrUnauthenticated)
	case !ok:
		return fmt.Errorf("%w: the Authorization header must be Bearer <admin token>", hub.ErrUnauthenticated)
	case subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1:
		return fmt.Errorf("%w: wrong admin token: this is not the hub's admin.token", hub.ErrUnauthenticated)
	}
	return nil
}

func toWire(t storage.Tenant) wire.Tenant {
	return wire.Tenant{Server: t.Server, Quota: wire.Quota(t.Quota), Usage: wire.Usage(t.Usage), Suspended: t.Suspended, Created: t.Created, Label: t.Label}
}

func adminTenants(w http.ResponseWriter, r *http.Request, svc *hub.Service) error {
	ts, at, err := svc.Tenants(r.Context())
	if err != nil {
		return err
	}
	out := wire.Tenants{Tenants: make([]wire.Tenant, len(ts)), At: at}
	for i, t := range ts {
		out.Tenants[i] = toWire(t)
	}
	return reply(w, r, http.StatusOK, out)
}

func adminTenant(w http.ResponseWriter, r *http.Request, svc *hub.Service, server policy.ID, status int) error {
	t, err := svc.Tenant(r.Context(), server)
	if err != nil {
		return err
	}
	return reply(w, r, status, toWire(t))
}
