package httpapi

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/wire"
)

// MaxLedgerRange bounds the time range one ledger request covers: a year
// and a day of hourly samples is about 8,800 rows per tenant.
const MaxLedgerRange = 366 * 24 * time.Hour

// ledgerPage is how many samples the ledger reads from the store at a time
// while it streams.
const ledgerPage = 1000

// ledgerTime is the ledger's one time format: RFC 3339 in UTC, whole seconds.
const ledgerTime = "2006-01-02T15:04:05Z"

// billingRoutes adds tenant deletion and the usage ledger to the admin mux.
func billingRoutes(mux *http.ServeMux, auth func(handlerFunc) http.HandlerFunc, svc *hub.Service) {
	mux.HandleFunc("DELETE /v1/admin/tenants/{server}", auth(func(w http.ResponseWriter, r *http.Request) error {
		server, err := pathID(r, "server")
		if err != nil {
			return err
		}
		deleted, err := svc.DeleteTenant(r.Context(), server)
		if err != nil {
			return err
		}
		return reply(w, r, http.StatusOK, wire.TenantDeleted{Server: server, Deleted: deleted})
	}))
	mux.HandleFunc("GET /v1/admin/usage/ledger", auth(func(w http.ResponseWriter, r *http.Request) error {
		return ledger(w, r, svc)
	}))
}

// ledger streams the samples with from <= at < to, page by page, as JSON
// Lines (the default) or CSV. Errors before the first byte are answered
// as errors; one after it aborts the response, so that a client never
// takes a cut stream for the whole ledger.
func ledger(w http.ResponseWriter, r *http.Request, svc *hub.Service) error {
	q := r.URL.Query()
	format := q.Get("format")
	switch format {
	case "":
		format = "jsonl"
	case "jsonl", "csv":
	default:
		return fmt.Errorf("%w: format=%q: want jsonl or csv", hub.ErrBadRequest, format)
	}
	to := time.Now()
	if v := q.Get("to"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return fmt.Errorf("%w: to=%q: want RFC 3339, as 2026-12-01T00:00:00Z", hub.ErrBadRequest, v)
		}
		to = t
	}
	from := to.Add(-24 * time.Hour)
	if v := q.Get("from"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return fmt.Errorf("%w: from=%q: want RFC 3339, as 2026-11-01T00:00:00Z", hub.ErrBadRequest, v)
		}
		from = t
	}
	if !from.Before(to) || to.Sub(from) > MaxLedgerRange {
		return fmt.Errorf("%w: from must be before to, at most %v apart (%s to %s)", hub.ErrBadRequest, MaxLedgerRange, from.UTC().Format(ledgerTime), to.UTC().Format(ledgerTime))
	}
	page, err := svc.Ledger(r.Context(), from.UnixMilli(), to.UnixMilli(), storage.SampleCursor{}, ledgerPage)
	if err != nil {
		return err
	}
	var write func(wire.Sample) error
	var flush func()
	switch format {
	case "jsonl":
		w.Header().Set("Content-Type", "application/jsonl")
		enc := json.NewEncoder(w)
		write, flush = func(s wire.Sample) error { return enc.Encode(s) }, func() {}
	case "csv":
		w.Header().Set("Content-Type", "text/csv")
		cw := csv.NewWriter(w)
		u := func(v uint64) string { return strconv.FormatUint(v, 10) }
		cw.Write(wire.SampleFields)
		write = func(s wire.Sample) error {
			return cw.Write([]string{s.At, s.Server.String(), s.Label, u(s.Bytes), u(s.Envelopes), u(s.Blobs), u(s.EgressBytes)})
		}
		flush = cw.Flush
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for {
		for _, s := range page {
			if err := write(toWireSample(s)); err != nil {
				return nil // the client went away
			}
		}
		flush()
		if len(page) < ledgerPage {
			return nil
		}
		rc.Flush()
		last := page[len(page)-1]
		if page, err = svc.Ledger(r.Context(), from.UnixMilli(), to.UnixMilli(), storage.SampleCursor{At: last.At, Server: last.Server}, ledgerPage); err != nil {
			panic(http.ErrAbortHandler) // the status is sent: cut the response short so it reads as incomplete
		}
	}
}

func toWireSample(s storage.Sample) wire.Sample {
	return wire.Sample{At: time.UnixMilli(s.At).UTC().Format(ledgerTime), Server: s.Server, Label: s.Label,
		Bytes: s.Usage.Bytes, Envelopes: s.Usage.Envelopes, Blobs: s.Usage.Blobs, EgressBytes: s.Egress}
}
