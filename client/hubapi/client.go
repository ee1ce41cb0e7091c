// Package hubapi is the typed client of a hub's API (docs/API.md): HTTP
// requests and the WebSocket subscription, speaking package wire's types,
// and the operator's admin API. It is to the member SDK (package client)
// what Tailscale's derphttp is to derp: transport only. It holds no keys
// beyond a session token, decides nothing about authority, and never
// imports the hub.
package hubapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// Error is a hub's refusal: its stable code (wire/codes.go, policy's
// codes) and message.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("hub: %s: %s", e.Code, e.Message) }

// Is makes a hub's refusal match policy's sentinel of the same code, so
// errors.Is(err, policy.ErrBanned) holds whether the client or the hub
// decided.
func (e *Error) Is(target error) bool {
	t, ok := target.(*policy.Error)
	return ok && string(t.Code) == e.Code
}

// IsCode reports whether err is a hub refusal with that code.
func IsCode(err error, code string) bool {
	var he *Error
	return errors.As(err, &he) && he.Code == code
}

// Client talks to one hub's public API. It is safe for concurrent use.
type Client struct {
	URL  string
	HTTP *http.Client

	mu      sync.Mutex
	node    policy.PublicKey   // guarded by mu; learned from /v1/info
	cert    *policy.DeviceCert // guarded by mu; the node's certificate, if a home node
	token   string             // guarded by mu
	expires time.Time          // guarded by mu
}

// New returns a client for the hub at url (http:// or https://).
func New(url string) *Client {
	return &Client{URL: strings.TrimRight(url, "/"), HTTP: &http.Client{Timeout: 60 * time.Second}}
}

func (h *Client) call(ctx context.Context, method, path, token string, in, out any) error {
	var body io.Reader
	switch v := in.(type) {
	case nil:
	case rawBody:
		body = bytes.NewReader(v)
	default:
		b, err := wire.Marshal(wire.CBOR, in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.URL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", wire.CBOR)
	req.Header.Set("Accept", wire.CBOR) // answers in CBOR, which the hub gives only to those who ask
	if token != "" {
		req.Header.Set("Authorization", authorization(token))
	}
	resp, err := h.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("hub %s: %w", h.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("hub %s: %w", h.URL, err)
	}
	if resp.StatusCode >= 300 {
		var we wire.Error
		if wire.Unmarshal(wire.JSON, b, &we) != nil || we.Code == "" {
			return &Error{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: strings.TrimSpace(string(b))}
		}
		return &Error{Status: resp.StatusCode, Code: we.Code, Message: we.Message}
	}
	if out == nil {
		return nil
	}
	return wire.Unmarshal(resp.Header.Get("Content-Type"), b, out)
}

// Info returns the hub's description and remembers its node key and, for
// a home node, its certificate (which must certify that key).
func (h *Client) Info(ctx context.Context) (wire.Info, error) {
	var info wire.Info
	if err := h.call(ctx, "GET", "/v1/info", "", nil, &info); err != nil {
		return info, err
	}
	var cert *policy.DeviceCert
	if len(info.NodeCert) > 0 {
		c, err := policy.ParseDeviceCert(info.NodeCert)
		if err != nil {
			return info, fmt.Errorf("hub %s: its node certificate: %w", h.URL, err)
		}
		if c.Device != info.Node {
			return info, fmt.Errorf("hub %s: its node certificate certifies %s, not its node key %s", h.URL, c.Device, info.Node)
		}
		cert = c
	}
	h.mu.Lock()
	h.node, h.cert = info.Node, cert
	h.mu.Unlock()
	return info, nil
}

// NodeCert returns the hub's node certificate if it is a home node (nil
// otherwise), asking the hub once.
func (h *Client) NodeCert(ctx context.Context) (*policy.DeviceCert, error) {
	h.mu.Lock()
	n, c := h.node, h.cert
	h.mu.Unlock()
	if !n.IsZero() {
		return c, nil
	}
	if _, err := h.Info(ctx); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cert, nil
}

// Node returns the hub's node key, asking the hub once.
func (h *Client) Node(ctx context.Context) (policy.PublicKey, error) {
	h.mu.Lock()
	n := h.node
	h.mu.Unlock()
	if !n.IsZero() {
		return n, nil
	}
	info, err := h.Info(ctx)
	return info.Node, err
}

// A Prover signs the session challenge as a device of an identity
// (client.Device is one).
type Prover interface {
	Signer() policy.Signer
}

// Login proves the device to the hub (device-key challenge) and keeps the
// session token; it is called by the reads that need one.
func (h *Client) Login(ctx context.Context, d Prover) (string, error) {
	h.mu.Lock()
	if h.token != "" && time.Until(h.expires) > time.Minute {
		t := h.token
		h.mu.Unlock()
		return t, nil
	}
	h.mu.Unlock()
	node, err := h.Node(ctx)
	if err != nil {
		return "", err
	}
	var c wire.Challenge
	if err := h.call(ctx, "POST", "/v1/auth/challenge", "", nil, &c); err != nil {
		return "", err
	}
	proof, err := policy.NewAuth(d.Signer(), policy.AuthBody{Hub: node, Challenge: c.Challenge, Time: time.Now().UnixMilli()})
	if err != nil {
		return "", err
	}
	var s wire.Session
	if err := h.call(ctx, "POST", "/v1/auth/session", "", wire.SessionRequest{Proof: proof.Raw}, &s); err != nil {
		return "", err
	}
	h.mu.Lock()
	h.token, h.expires = s.Token, time.UnixMilli(s.Expires)
	h.mu.Unlock()
	return s.Token, nil
}

// PublishEvents publishes state events of a server.
func (h *Client) PublishEvents(ctx context.Context, server policy.ID, raws [][]byte) ([]wire.EventResult, error) {
	var out wire.EventResults
	err := h.call(ctx, "POST", "/v1/servers/"+server.String()+"/events", "", wire.Objects{Objects: raws}, &out)
	return out.Results, err
}

// Events returns a page of a server's state log.
func (h *Client) Events(ctx context.Context, token string, server policy.ID, after uint64) (wire.Events, error) {
	var out wire.Events
	err := h.call(ctx, "GET", fmt.Sprintf("/v1/servers/%s/events?after=%d&limit=10000", server, after), token, nil, &out)
	return out, err
}

// Post posts envelopes; results are in order.
func (h *Client) Post(ctx context.Context, raws [][]byte) ([]wire.Result, error) {
	var out wire.Results
	err := h.call(ctx, "POST", "/v1/envelopes", "", wire.Objects{Objects: raws}, &out)
	return out.Results, err
}

// Read returns a page of a channel after a cursor.
func (h *Client) Read(ctx context.Context, token string, server, channel policy.ID, after uint64, limit int) (wire.Envelopes, error) {
	var out wire.Envelopes
	err := h.call(ctx, "GET", fmt.Sprintf("/v1/servers/%s/channels/%s/envelopes?after=%d&limit=%d", server, channel, after, limit), token, nil, &out)
	return out, err
}

// ReadOmittingBundles is Read with key bundles left out (bundles=omit):
// they come as BundleEpoch with no Raw; Keys serves this device's entries.
func (h *Client) ReadOmittingBundles(ctx context.Context, token string, server, channel policy.ID, after uint64, limit int) (wire.Envelopes, error) {
	var out wire.Envelopes
	err := h.call(ctx, "GET", fmt.Sprintf("/v1/servers/%s/channels/%s/envelopes?after=%d&limit=%d&bundles=omit", server, channel, after, limit), token, nil, &out)
	return out, err
}

// Keys reads the key-bundle entries sealed to the session's device.
func (h *Client) Keys(ctx context.Context, token string, server, channel policy.ID, after uint64, limit int) (wire.SealedKeys, error) {
	var out wire.SealedKeys
	err := h.call(ctx, "GET", fmt.Sprintf("/v1/servers/%s/channels/%s/keys?after=%d&limit=%d", server, channel, after, limit), token, nil, &out)
	return out, err
}

// Envelope fetches one envelope by ID.
func (h *Client) Envelope(ctx context.Context, token string, server, id policy.ID) (wire.Envelope, error) {
	var out wire.Envelope
	err := h.call(ctx, "GET", fmt.Sprintf("/v1/servers/%s/envelopes/%s", server, id), token, nil, &out)
	return out, err
}

// Reconcile runs one reconciliation round.
func (h *Client) Reconcile(ctx context.Context, token string, server, channel policy.ID, ranges []wire.Range) ([]wire.Range, error) {
	var out wire.Reconcile
	err := h.call(ctx, "POST", fmt.Sprintf("/v1/servers/%s/channels/%s/reconcile", server, channel), token, wire.Reconcile{Ranges: ranges}, &out)
	return out.Ranges, err
}

// Tombstone posts tombstones.
func (h *Client) Tombstone(ctx context.Context, raws [][]byte) ([]wire.Result, error) {
	var out wire.Results
	err := h.call(ctx, "POST", "/v1/tombstones", "", wire.Objects{Objects: raws}, &out)
	return out.Results, err
}

// PutBlob uploads a blob's bytes.
func (h *Client) PutBlob(ctx context.Context, token string, server, id policy.ID, data []byte) error {
	return h.call(ctx, "PUT", fmt.Sprintf("/v1/servers/%s/blobs/%s", server, id), token, rawBody(data), nil)
}

// rawBody is sent as is, not encoded.
type rawBody []byte

// authorization returns the Authorization header for a credential: a
// session token ("Bearer"), or an invite token, which opens a server's
// state log to a newcomer ("Invite", docs/API.md).
func authorization(token string) string {
	if strings.HasPrefix(token, policy.InviteTokenPrefix) {
		return "Invite " + token
	}
	return "Bearer " + token
}

// GetBlob downloads a blob's bytes, checking they hash to its ID.
func (h *Client) GetBlob(ctx context.Context, token string, server, id policy.ID) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/v1/servers/%s/blobs/%s", h.URL, server, id), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", authorization(token))
	resp, err := h.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		var we wire.Error
		wire.Unmarshal(wire.JSON, b, &we)
		return nil, &Error{Status: resp.StatusCode, Code: we.Code, Message: we.Message}
	}
	if policy.Sum(b) != id {
		return nil, fmt.Errorf("hubapi: blob %s from %s does not match its ID", id, h.URL)
	}
	return b, nil
}

// Subscription follows channels over a hub's WebSocket.
type Subscription struct {
	conn *websocket.Conn
	C    <-chan wire.Frame // msg and cut frames; closed when the socket ends
	err  error
	mu   sync.Mutex
}

// Err tells why the subscription ended, once C is closed.
func (s *Subscription) Err() error { s.mu.Lock(); defer s.mu.Unlock(); return s.err }

// Close ends the subscription.
func (s *Subscription) Close() error { return s.conn.Close(websocket.StatusNormalClosure, "") }

// Subscribe follows topics from their cursors.
func (h *Client) Subscribe(ctx context.Context, token string, topics []wire.Topic) (*Subscription, error) {
	u, err := url.Parse(h.URL + "/v1/ws")
	if err != nil {
		return nil, err
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	hdr := http.Header{}
	if token != "" {
		hdr.Set("Authorization", authorization(token))
	}
	conn, _, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		return nil, fmt.Errorf("hub %s: %w", h.URL, err)
	}
	conn.SetReadLimit(64 << 20)
	b, _ := wire.Marshal(wire.CBOR, []wire.Frame{{Op: wire.OpSub, ID: 1, Topics: topics}})
	if err := conn.Write(ctx, websocket.MessageBinary, b); err != nil {
		conn.CloseNow()
		return nil, err
	}
	c := make(chan wire.Frame, 256)
	s := &Subscription{conn: conn, C: c}
	acked := make(chan error, 1)
	go func() {
		defer close(c)
		first := true
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
				if first {
					acked <- err
				}
				return
			}
			var frames []wire.Frame
			if err := wire.Unmarshal(wire.CBOR, b, &frames); err != nil {
				continue
			}
			for _, f := range frames {
				switch {
				case first && f.ID == 1 && f.Op == wire.OpErr:
					acked <- &Error{Code: f.Error.Code, Message: f.Error.Message}
					conn.CloseNow()
					return
				case first && f.ID == 1 && f.Op == wire.OpAck:
					first = false
					acked <- nil
				case f.Op == wire.OpMsg || f.Op == wire.OpCut:
					c <- f
				}
			}
		}
	}()
	select {
	case err := <-acked:
		if err != nil {
			return nil, err
		}
		return s, nil
	case <-ctx.Done():
		conn.CloseNow()
		return nil, ctx.Err()
	}
}

// Report files an abuse report of one message with the hub's operator.
func (h *Client) Report(ctx context.Context, token string, server policy.ID, req wire.ReportRequest) (wire.ReportFiled, error) {
	var out wire.ReportFiled
	err := h.call(ctx, "POST", fmt.Sprintf("/v1/servers/%s/reports", server), token, req, &out)
	return out, err
}
