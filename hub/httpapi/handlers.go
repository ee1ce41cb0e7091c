package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
	"github.com/guildhall/guildhall/wire"
)

func (a *API) info(w http.ResponseWriter, r *http.Request) error {
	info := wire.Info{Node: a.svc.NodeID(), Version: a.cfg.Version, MaxBody: a.cfg.MaxBody, MaxBlob: a.svc.MaxBlob(),
		MaxBatch: a.cfg.MaxBatch, MaxFrame: a.cfg.MaxFrame, MaxPage: storage.MaxPage, PresignBlob: a.svc.Presigns(), Incarnation: a.svc.Incarnation(),
		PublicURL: a.cfg.PublicURL}
	if c := a.svc.NodeCert(); c != nil {
		info.NodeCert = c.Raw
	}
	return reply(w, r, 200, info)
}

func (a *API) challenge(w http.ResponseWriter, r *http.Request) error {
	c, exp := a.svc.Challenge()
	return reply(w, r, 200, wire.Challenge{Challenge: c, Expires: exp})
}

func (a *API) session(w http.ResponseWriter, r *http.Request) error {
	var in wire.SessionRequest
	if err := a.decode(r, &in); err != nil {
		return err
	}
	token, rd, exp, err := a.svc.Session(in.Proof)
	if err != nil {
		if errors.Is(err, hub.ErrUnauthenticated) || policy.CodeOf(err) == "" {
			return err
		}
		return fmt.Errorf("%w: %w", hub.ErrUnauthenticated, err)
	}
	return reply(w, r, 200, wire.Session{Token: token, Identity: rd.Identity, Device: rd.Device, Expires: exp})
}

func (a *API) publishEvents(w http.ResponseWriter, r *http.Request) error {
	server, err := pathID(r, "server")
	if err != nil {
		return err
	}
	raws, err := a.objects(r)
	if err != nil {
		return err
	}
	res, err := a.svc.PublishEvents(r.Context(), server, raws)
	if err != nil {
		a.metrics.events.WithLabelValues(Code(err)).Inc()
		return err
	}
	a.metrics.events.WithLabelValues("stored").Inc()
	out := wire.EventResults{Results: make([]wire.EventResult, len(res))}
	for i, e := range res {
		out.Results[i] = wire.EventResult{ID: e.ID, Folded: e.Folded}
		if e.Reason != nil {
			out.Results[i].Reason = a.itemError(e.Reason, r.Host)
		}
	}
	return reply(w, r, 200, out)
}

func (a *API) events(w http.ResponseWriter, r *http.Request) error {
	server, err := pathID(r, "server")
	if err != nil {
		return err
	}
	rd, err := a.caller(r)
	if err != nil {
		return err
	}
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	evs, err := a.svc.Events(r.Context(), rd, server, after, limit)
	if err != nil {
		return a.readErr(r.Context(), rd, server, err)
	}
	out := wire.Events{Events: make([]wire.Event, len(evs)), Next: after, More: len(evs) == limit}
	for i, e := range evs {
		out.Events[i] = wire.Event{Seq: e.Seq, Raw: e.Raw}
		out.Next = e.Seq
		a.svc.CountEgress(server, len(e.Raw))
	}
	return reply(w, r, 200, out)
}

// itemError converts one object's error for the wire, for a request that
// reached the hub as host; an internal one is logged, as a failed request
// is, since its details stay off the wire, and so are the details of a
// quota or suspension refusal.
func (a *API) itemError(err error, host string) *wire.Error {
	we := wireErrorAt(err, host)
	switch we.Code {
	case wire.CodeInternal:
		a.cfg.Logger.Error("hub: object failed", "err", err)
	case wire.CodeQuotaExceeded, wire.CodeSuspended:
		a.cfg.Logger.Info("hub: object refused", "code", we.Code, "err", err)
	}
	return we
}

// results answers posted envelopes, and counts them.
func (a *API) results(posted []hub.Posted, host string) wire.Results {
	a.metrics.countPosts(posted)
	out := wire.Results{Results: make([]wire.Result, len(posted))}
	for i, p := range posted {
		if p.Err != nil {
			out.Results[i].Error = a.itemError(p.Err, host)
		} else if p.Receipt != nil {
			out.Results[i].Receipt = p.Receipt.Raw
		}
	}
	return out
}

func (a *API) postEnvelopes(w http.ResponseWriter, r *http.Request) error {
	raws, err := a.objects(r)
	if err != nil {
		return err
	}
	return reply(w, r, 200, a.results(a.svc.Post(r.Context(), raws), r.Host))
}

func (a *API) tombstones(w http.ResponseWriter, r *http.Request) error {
	raws, err := a.objects(r)
	if err != nil {
		return err
	}
	return reply(w, r, 200, a.tombResults(a.svc.Tombstone(r.Context(), raws), r.Host))
}

func (a *API) tombResults(errs []error, host string) wire.Results {
	out := wire.Results{Results: make([]wire.Result, len(errs))}
	for i, err := range errs {
		if err != nil {
			out.Results[i].Error = a.itemError(err, host)
		}
	}
	return out
}

func (a *API) readChannel(w http.ResponseWriter, r *http.Request) error {
	rd, server, channel, err := a.target(r, "channel")
	if err != nil {
		return err
	}
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	omitBundles := false
	switch r.URL.Query().Get("bundles") {
	case "":
	case "omit":
		omitBundles = true
	default:
		return fmt.Errorf("%w: bundles=%q (omit, or leave it out)", hub.ErrBadRequest, r.URL.Query().Get("bundles"))
	}
	envs, err := a.svc.Read(r.Context(), rd, server, channel, after, limit)
	if err != nil {
		return a.readErr(r.Context(), rd, server, err)
	}
	removed, err := a.svc.TakedownRecords(r.Context(), envs)
	if err != nil {
		return err
	}
	out := wire.Envelopes{Envelopes: make([]wire.Envelope, len(envs)), Next: after, More: len(envs) == limit, Incarnation: a.svc.Incarnation()}
	for i, e := range envs {
		out.Envelopes[i] = wire.Envelope{Seq: e.Seq, ID: e.ID, StoredAt: e.StoredAt, Raw: e.Raw, Tombstone: e.Tombstone, TakenDown: removed[e.ID]}
		if omitBundles && e.Raw != nil {
			if h, err := policy.StoredEnvelopeHeader(e.Raw); err == nil && len(h.Ciphertext) > 0 && h.Ciphertext[0] == policy.PayloadKeys {
				out.Envelopes[i].Raw, out.Envelopes[i].BundleEpoch = nil, h.Epoch
			}
		}
		out.Next = e.Seq
		a.svc.CountEgress(server, len(out.Envelopes[i].Raw)+len(e.Tombstone))
	}
	return reply(w, r, 200, out)
}

func (a *API) keys(w http.ResponseWriter, r *http.Request) error {
	rd, server, channel, err := a.target(r, "channel")
	if err != nil {
		return err
	}
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	keys, err := a.svc.KeysFor(r.Context(), rd, server, channel, after, min(limit, hub.MaxKeyPage))
	if err != nil {
		return a.readErr(r.Context(), rd, server, err)
	}
	out := wire.SealedKeys{Keys: make([]wire.SealedKey, len(keys)), Next: after, More: len(keys) == min(limit, hub.MaxKeyPage)}
	for i, k := range keys {
		out.Keys[i] = wire.SealedKey{Seq: k.Seq, Envelope: k.Envelope, Epoch: k.Epoch, KeyID: k.KeyID[:], Sealed: k.Sealed}
		out.Next = k.Seq
		a.svc.CountEgress(server, len(k.Sealed))
	}
	return reply(w, r, 200, out)
}

func (a *API) envelope(w http.ResponseWriter, r *http.Request) error {
	rd, server, id, err := a.target(r, "id")
	if err != nil {
		return err
	}
	e, err := a.svc.Envelope(r.Context(), rd, server, id)
	if err != nil {
		return a.readErr(r.Context(), rd, server, err)
	}
	a.svc.CountEgress(server, len(e.Raw)+len(e.Tombstone))
	return reply(w, r, 200, wire.Envelope{Seq: e.Seq, ID: e.ID, StoredAt: e.StoredAt, Raw: e.Raw, Tombstone: e.Tombstone})
}

func (a *API) reconcile(w http.ResponseWriter, r *http.Request) error {
	rd, server, channel, err := a.target(r, "channel")
	if err != nil {
		return err
	}
	var in wire.Reconcile
	if err := a.decode(r, &in); err != nil {
		return err
	}
	ranges, err := wire.ToRanges(in.Ranges)
	if err != nil {
		return err
	}
	res, err := a.svc.Reconcile(r.Context(), rd, server, channel, ranges)
	if err != nil {
		return a.readErr(r.Context(), rd, server, err)
	}
	out := wire.Reconcile{Ranges: wire.FromRanges(res)}
	return reply(w, r, 200, out)
}

// target reads who asks about what: the path's server and its second ID
// (a channel, envelope or blob, named by name), then the caller.
func (a *API) target(r *http.Request, name string) (hub.Caller, policy.ID, policy.ID, error) {
	server, err := pathID(r, "server")
	if err != nil {
		return hub.Caller{}, server, server, err
	}
	id, err := pathID(r, name)
	if err != nil {
		return hub.Caller{}, server, id, err
	}
	rd, err := a.caller(r)
	return rd, server, id, err
}

func (a *API) putBlob(w http.ResponseWriter, r *http.Request) error {
	rd, server, blob, err := a.target(r, "blob")
	if err != nil {
		return err
	}
	if r.ContentLength < 0 {
		return fmt.Errorf("%w: a blob upload needs Content-Length", hub.ErrBadRequest)
	}
	body := http.MaxBytesReader(w, r.Body, r.ContentLength)
	if err := a.svc.PutBlob(r.Context(), rd, server, blob, body, r.ContentLength); err != nil {
		return a.readErr(r.Context(), rd, server, err)
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (a *API) getBlob(w http.ResponseWriter, r *http.Request) error {
	rd, server, blob, err := a.target(r, "blob")
	if err != nil {
		return err
	}
	body, size, err := a.svc.GetBlob(r.Context(), rd, server, blob)
	if err != nil {
		return a.readErr(r.Context(), rd, server, err)
	}
	defer body.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	n, _ := io.Copy(w, body) // a failure mid-stream shows as a short body
	a.svc.CountEgress(server, int(n))
	return nil
}

func (a *API) presign(w http.ResponseWriter, r *http.Request) error {
	rd, server, blob, err := a.target(r, "blob")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	put := q.Get("op") == "put"
	if !put && q.Get("op") != "get" {
		return fmt.Errorf("%w: op must be put or get", hub.ErrBadRequest)
	}
	var size int64
	if put {
		if size, err = strconv.ParseInt(q.Get("size"), 10, 64); err != nil {
			return fmt.Errorf("%w: size: %v", hub.ErrBadRequest, err)
		}
	}
	u, h, err := a.svc.PresignBlob(r.Context(), rd, server, blob, put, size, a.cfg.PresignTTL)
	if err != nil {
		return a.readErr(r.Context(), rd, server, err)
	}
	if u == nil {
		return fmt.Errorf("%w: this hub's blob store cannot presign; use the blob endpoint", hub.ErrNoBlobs)
	}
	if !put {
		a.svc.CountPresignedGet(r.Context(), server, blob)
	}
	return reply(w, r, 200, wire.BlobTicket{URL: u.String(), Header: h, Expires: time.Now().Add(a.cfg.PresignTTL).UnixMilli()})
}
