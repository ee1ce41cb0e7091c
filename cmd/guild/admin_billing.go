package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/guildhall/guildhall/client/hubapi"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// labelFlag is a tenant's customer label as given on the command line:
// unset (keep it) or a value ("" clears it).
type labelFlag struct{ v *string }

func (l *labelFlag) String() string {
	if l == nil || l.v == nil {
		return ""
	}
	return *l.v
}

func (l *labelFlag) Set(s string) error { l.v = &s; return nil }

// adminRequest makes an admin API request with a JSON body (nil: none)
// and returns the response body, or the hub's error.
func (o *adminOpts) request(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(o.url, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", wire.JSON)
	req.Header.Set("Accept", wire.JSON)
	if o.token != "" {
		req.Header.Set("Authorization", "Bearer "+o.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the hub's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var we wire.Error
		if json.Unmarshal(b, &we) != nil || we.Code == "" {
			return nil, &hubapi.Error{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: strings.TrimSpace(string(b))}
		}
		return nil, &hubapi.Error{Status: resp.StatusCode, Code: we.Code, Message: we.Message}
	}
	return b, nil
}

// createTenant creates a tenant with a quota and a label in one request.
func (o *adminOpts) createTenant(ctx context.Context, server policy.ID, q wire.Quota, label *string) (wire.Tenant, error) {
	var t wire.Tenant
	b, err := o.request(ctx, "POST", "/v1/admin/tenants", wire.TenantRequest{Server: server, Quota: q, Label: label})
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	return t, err
}

type deleteOpts struct {
	adminOpts
	yes bool
}

func (o *deleteOpts) register(fs *flag.FlagSet, e *env) {
	o.adminOpts.register(fs, e)
	fs.BoolVar(&o.yes, "yes", false, "confirm: the tenant's data and blobs are deleted for good")
}

// adminTenantDelete deletes a tenant with everything it stores; it asks
// for --yes since nothing brings the data back.
func adminTenantDelete(ctx context.Context, e *env, a *args, o *deleteOpts) (any, error) {
	if !o.yes {
		return nil, fmt.Errorf("this deletes every envelope, state event and blob of %s on the hub for good: run it again with --yes", a.server)
	}
	b, err := o.request(ctx, "DELETE", "/v1/admin/tenants/"+a.server.String(), nil)
	if err != nil {
		return nil, err
	}
	var out wire.TenantDeleted
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return deletedOut(out), nil
}

type deletedOut wire.TenantDeleted

func (d deletedOut) Human() string {
	if !d.Deleted {
		return fmt.Sprintf("%s was deleted already", d.Server)
	}
	return fmt.Sprintf("deleted %s: its state, envelopes and blobs are gone; its usage samples stay in the ledger", d.Server)
}

type usageOpts struct {
	adminOpts
	ledger           bool
	from, to, format string
	label            string
}

func (o *usageOpts) register(fs *flag.FlagSet, e *env) {
	o.adminOpts.register(fs, e)
	fs.BoolVar(&o.ledger, "ledger", false, "the usage ledger (samples over time, with egress) instead of usage now")
	fs.StringVar(&o.from, "from", "", "with --ledger: first sample time, RFC 3339 (default: 24 hours before --to)")
	fs.StringVar(&o.to, "to", "", "with --ledger: end of the range (excluded), RFC 3339 (default: now)")
	fs.StringVar(&o.format, "format", "csv", "with --ledger: csv or jsonl")
	fs.StringVar(&o.label, "label", "", "only the rows of tenants with this customer label")
}

// adminUsage prints usage now (CSV), or the ledger over a range in CSV or
// JSON Lines, optionally only the rows of one customer label.
func adminUsage(ctx context.Context, e *env, a *args, o *usageOpts) (any, error) {
	var b []byte
	var err error
	format := "csv"
	if e.json && !o.ledger { // the tenants as JSON, not CSV wrapped in a string
		ts, err := o.admin().Tenants(ctx)
		if err != nil {
			return nil, err
		}
		if o.label != "" {
			kept := ts.Tenants[:0]
			for _, t := range ts.Tenants {
				if t.Label == o.label {
					kept = append(kept, t)
				}
			}
			ts.Tenants = kept
		}
		return ts, nil
	}
	if e.json && o.ledger {
		o.format = "jsonl" // JSON lines: one sample per line
	}
	if o.ledger {
		q := url.Values{"format": {o.format}}
		if o.from != "" {
			q.Set("from", o.from)
		}
		if o.to != "" {
			q.Set("to", o.to)
		}
		format = o.format
		b, err = o.request(ctx, "GET", "/v1/admin/usage/ledger?"+q.Encode(), nil)
	} else {
		if o.from != "" || o.to != "" || o.format != "csv" {
			return nil, errors.New("--from, --to and --format go with --ledger")
		}
		b, err = o.admin().UsageCSV(ctx)
	}
	if err != nil {
		return nil, err
	}
	if o.label != "" {
		if b, err = onlyLabel(b, format, o.label); err != nil {
			return nil, err
		}
	}
	return rawOut(b), nil
}

// onlyLabel keeps the header (CSV) and the rows whose label is label.
func onlyLabel(b []byte, format, label string) ([]byte, error) {
	var out bytes.Buffer
	if format == "jsonl" {
		for line := range bytes.Lines(b) {
			var row struct {
				Label string `json:"label"`
			}
			if err := json.Unmarshal(line, &row); err != nil {
				return nil, fmt.Errorf("a ledger line: %w", err)
			}
			if row.Label == label {
				out.Write(line)
			}
		}
		return out.Bytes(), nil
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(recs) == 0 {
		return nil, fmt.Errorf("the hub's CSV: %v", err)
	}
	col := -1
	for i, name := range recs[0] {
		if name == "label" {
			col = i
		}
	}
	if col < 0 {
		return nil, errors.New("the hub's CSV has no label column: it predates labels")
	}
	w := csv.NewWriter(&out)
	w.Write(recs[0])
	for _, r := range recs[1:] {
		if r[col] == label {
			w.Write(r)
		}
	}
	w.Flush()
	return out.Bytes(), w.Error()
}
