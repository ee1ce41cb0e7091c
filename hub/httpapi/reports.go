package httpapi

import (
	"net/http"
	"strconv"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/payload"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/wire"
)

// report files a member's abuse report (POST /v1/servers/{server}/reports).
func (a *API) report(w http.ResponseWriter, r *http.Request) error {
	server, err := pathID(r, "server")
	if err != nil {
		return err
	}
	rd, err := a.caller(r)
	if err != nil {
		return err
	}
	var in wire.ReportRequest
	if err := a.decode(r, &in); err != nil {
		return err
	}
	rep, err := a.svc.Report(r.Context(), rd, server, in.Envelope, in.Key, in.Reason)
	if err != nil {
		return err
	}
	return reply(w, r, http.StatusCreated, wire.ReportFiled{Seq: rep.Seq})
}

// adminReports lists abuse reports (GET /v1/admin/reports), each with the
// message its evidence opens.
func adminReports(w http.ResponseWriter, r *http.Request, svc *hub.Service) error {
	q := r.URL.Query()
	var server policy.ID
	if v := q.Get("server"); v != "" {
		id, err := policy.ParseID(v)
		if err != nil {
			return wrapBad("server=" + v + ": " + err.Error())
		}
		server = id
	}
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
	rs, bodies, err := svc.Reports(r.Context(), server, after, limit)
	if err != nil {
		return err
	}
	out := wire.Reports{Reports: make([]wire.Report, len(rs)), Next: after, More: len(rs) == limit}
	for i, rep := range rs {
		out.Reports[i] = wire.Report{Seq: rep.Seq, Server: rep.Server, Channel: rep.Channel, Envelope: rep.Envelope, Author: rep.Author,
			Reporter: rep.Reporter, Reason: rep.Reason, At: rep.At.UTC().Format(rfc3339Milli), Body: bodies[i], Evidence: rep.Evidence, Key: rep.Key}
		out.Reports[i].Text, _ = payload.BodyText(bodies[i])
		out.Next = rep.Seq
	}
	return reply(w, r, http.StatusOK, out)
}
