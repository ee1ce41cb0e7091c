package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/wire"
)

// The operator's takedowns and audit log (docs/API.md, "Admin API").

type auditKey struct{}

// auditNote is what a handler adds to its request's audit entry: the
// tenant and target named in the body rather than the path.
type auditNote struct {
	server policy.ID
	target string
}

// noteAudit records what r acts on, for its audit entry.
func noteAudit(r *http.Request, server policy.ID, target string) {
	if n, ok := r.Context().Value(auditKey{}).(*auditNote); ok {
		n.server, n.target = server, target
	}
}

// audited wraps an admin handler: every request that changes something, and
// every one refused for its credentials, is written to the audit log (who,
// what, when, with which result) before the answer is sent (a change's
// answer is held until then); a request whose entry cannot be written fails
// with the store's error, so that nothing the operator does goes
// unrecorded. Reads are not acts: they stream as they are.
func audited(svc *hub.Service, h func(w http.ResponseWriter, r *http.Request) error) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		note := &auditNote{}
		r = r.WithContext(context.WithValue(r.Context(), auditKey{}, note))
		read := r.Method == http.MethodGet || r.Method == http.MethodHead
		var rec *deferredWriter
		var err error
		if read { // streamed as it is (a ledger export can be large); audited only if refused for its token, before anything was written
			err = h(w, r)
			if !errors.Is(err, hub.ErrUnauthenticated) {
				return err
			}
		} else {
			rec = &deferredWriter{ResponseWriter: w}
			err = h(rec, r)
		}
		done := func(err error) error {
			if rec == nil {
				return err
			}
			return rec.flush(err)
		}
		e := storage.AuditEntry{Actor: "admin", Source: sourceOf(r), Action: r.Pattern, Server: note.server, Target: note.target, Result: "ok"}
		if !strings.Contains(e.Action, " ") { // a pattern without its method
			e.Action = r.Method + " " + e.Action
		}
		if e.Server.IsZero() {
			if id, perr := policy.ParseID(r.PathValue("server")); perr == nil {
				e.Server = id
			}
		}
		if err != nil {
			e.Result = Code(err)
			if errors.Is(err, hub.ErrUnauthenticated) {
				e.Actor = "unknown"
			}
		}
		if aerr := svc.Audit(context.WithoutCancel(r.Context()), e); aerr != nil {
			return done(aerr)
		}
		return done(err)
	}
}

func sourceOf(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// deferredWriter holds a handler's answer until its audit entry is
// written.
type deferredWriter struct {
	http.ResponseWriter
	status int
	body   []byte
}

func (d *deferredWriter) WriteHeader(status int) { d.status = status }
func (d *deferredWriter) Write(b []byte) (int, error) {
	d.body = append(d.body, b...)
	return len(b), nil
}

// flush sends the held answer, unless err replaces it.
func (d *deferredWriter) flush(err error) error {
	if err != nil {
		return err
	}
	if d.status != 0 {
		d.ResponseWriter.WriteHeader(d.status)
	}
	_, werr := d.ResponseWriter.Write(d.body)
	return werr
}

func registerOperator(mux *http.ServeMux, auth func(handlerFunc) http.HandlerFunc, svc *hub.Service) {
	mux.HandleFunc("POST /v1/admin/takedowns", auth(func(w http.ResponseWriter, r *http.Request) error {
		var in wire.TakedownRequest
		if err := decodeBody(r, 64<<10, &in); err != nil {
			return err
		}
		noteAudit(r, in.Server, in.Kind+" "+in.Target.String())
		if in.Server.IsZero() {
			return wrapBad("a takedown names its server")
		}
		if in.Kind != policy.TakedownServer && in.Target.IsZero() {
			return wrapBad("a takedown of an " + in.Kind + " names its target")
		}
		rec, err := svc.TakeDown(r.Context(), in.Server, in.Kind, in.Target, in.Reason)
		if err != nil {
			return err
		}
		return reply(w, r, http.StatusCreated, takedownOut(storage.Takedown{Server: rec.Server, Kind: rec.Kind, Target: rec.Target,
			Record: rec.Raw, At: time.UnixMilli(rec.Time)}))
	}))
	mux.HandleFunc("GET /v1/admin/takedowns", auth(func(w http.ResponseWriter, r *http.Request) error {
		var server policy.ID
		if v := r.URL.Query().Get("server"); v != "" {
			id, err := policy.ParseID(v)
			if err != nil {
				return wrapBad("server=" + v + ": " + err.Error())
			}
			server = id
		}
		tds, err := svc.Takedowns(r.Context(), server, storage.MaxPage)
		if err != nil {
			return err
		}
		out := wire.Takedowns{Takedowns: make([]wire.Takedown, len(tds))}
		for i, t := range tds {
			out.Takedowns[i] = takedownOut(t)
		}
		return reply(w, r, http.StatusOK, out)
	}))
	mux.HandleFunc("DELETE /v1/admin/takedowns/{server}", auth(func(w http.ResponseWriter, r *http.Request) error {
		server, err := pathID(r, "server")
		if err != nil {
			return err
		}
		if err := svc.Unblock(r.Context(), server); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
	mux.HandleFunc("GET /v1/admin/reports", auth(func(w http.ResponseWriter, r *http.Request) error { return adminReports(w, r, svc) }))
	mux.HandleFunc("GET /v1/admin/audit", auth(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		after, limit := uint64(0), 1000
		var err error
		if v := q.Get("after"); v != "" {
			if after, err = strconv.ParseUint(v, 10, 64); err != nil {
				return wrapBad("after=" + v)
			}
		}
		if v := q.Get("limit"); v != "" {
			if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > storage.MaxPage {
				return wrapBad("limit=" + v + ": want 1..10000")
			}
		}
		es, err := svc.AuditLog(r.Context(), after, limit)
		if err != nil {
			return err
		}
		out := wire.Audit{Entries: make([]wire.AuditEntry, len(es)), Next: after, More: len(es) == limit}
		for i, e := range es {
			out.Entries[i] = wire.AuditEntry{Seq: e.Seq, At: e.At.UTC().Format(rfc3339Milli), Actor: e.Actor, Source: e.Source, Action: e.Action,
				Target: e.Target, Result: e.Result}
			if !e.Server.IsZero() {
				s := e.Server
				out.Entries[i].Server = &s
			}
			out.Next = e.Seq
		}
		return reply(w, r, http.StatusOK, out)
	}))
}

const rfc3339Milli = "2006-01-02T15:04:05.000Z07:00"

func takedownOut(t storage.Takedown) wire.Takedown {
	out := wire.Takedown{Server: t.Server, Kind: t.Kind, Target: t.Target, At: t.At.UTC().Format(rfc3339Milli), Record: t.Record}
	if rec, err := policy.ParseTakedown(t.Record); err == nil {
		out.Reason = rec.Reason
	}
	return out
}

func wrapBad(msg string) error { return fmt.Errorf("%w: %s", hub.ErrBadRequest, msg) }
