package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// loader holds a community it created on the hub.
type loader struct {
	hub    string
	pid    int
	node   policy.PublicKey
	server policy.ID
	chann  policy.ID
	device policy.Signer
	token  string
}

// call makes one CBOR request.
func (l *loader) call(ctx context.Context, method, path, token string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := wire.Marshal(wire.CBOR, in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, l.hub+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", wire.CBOR)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	return wire.Unmarshal(resp.Header.Get("Content-Type"), b, out)
}

// setup creates an identity, a device, a server with one channel granted
// to the hub, and a session.
func (l *loader) setup(ctx context.Context) error {
	var info wire.Info
	if err := l.call(ctx, "GET", "/v1/info", "", nil, &info); err != nil {
		return err
	}
	l.node = info.Node
	_, id, _ := ed25519.GenerateKey(rand.Reader)
	_, dev, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now().UnixMilli()
	cert, err := policy.NewDeviceCert(id, policy.DeviceCertBody{Device: policy.KeyOf(dev), KEM: policy.KEMX25519, EncKey: make([]byte, 32), Issued: now - 60_000, Expires: now + 7*24*3600_000})
	if err != nil {
		return err
	}
	l.device = policy.DeviceSigner(dev, cert)
	me := policy.IdentitySigner(id)
	gen, err := policy.NewEvent(me, policy.ID{}, nil, now, &policy.Genesis{Creators: []policy.PublicKey{me.Identity},
		Policy: policy.ServerPolicy{Name: "load", Everyone: policy.PermRead | policy.PermPost}})
	if err != nil {
		return err
	}
	ch, err := policy.NewEvent(me, gen.ID, []policy.ID{gen.ID}, now+1, &policy.ChannelCreate{Name: "load", Durability: policy.Replicated})
	if err != nil {
		return err
	}
	grant, err := policy.NewEvent(me, gen.ID, []policy.ID{ch.ID}, now+2, &policy.StorageGrant{Node: l.node})
	if err != nil {
		return err
	}
	l.server, l.chann = gen.ID, ch.ID
	if err := l.call(ctx, "POST", "/v1/servers/"+gen.ID.String()+"/events", "", wire.Objects{Objects: [][]byte{gen.Raw, ch.Raw, grant.Raw}}, nil); err != nil {
		return err
	}
	var c wire.Challenge
	if err := l.call(ctx, "POST", "/v1/auth/challenge", "", nil, &c); err != nil {
		return err
	}
	proof, err := policy.NewAuth(l.device, policy.AuthBody{Hub: l.node, Challenge: c.Challenge, Time: time.Now().UnixMilli()})
	if err != nil {
		return err
	}
	var s wire.Session
	if err := l.call(ctx, "POST", "/v1/auth/session", "", wire.SessionRequest{Proof: proof.Raw}, &s); err != nil {
		return err
	}
	l.token = s.Token
	return nil
}

// envelope signs an envelope of about size bytes whose ciphertext starts
// with the time it was made (for latency) and is otherwise random.
func (l *loader) envelope(size int) ([]byte, error) {
	ct := make([]byte, ctLen(size))
	rand.Read(ct)
	binary.BigEndian.PutUint64(ct, uint64(time.Now().UnixNano()))
	e, err := policy.NewEnvelope(l.device, policy.EnvelopeBody{Server: l.server, Channel: l.chann, Epoch: 1, Time: time.Now().UnixMilli(), Ciphertext: ct})
	if err != nil {
		return nil, err
	}
	return e.Raw, nil
}

// ctLen is the ciphertext length of an envelope of about size bytes: the
// header, certificate and signature take 393 bytes here.
func ctLen(size int) int { return max(size-393, 16) }

func (l *loader) dial(ctx context.Context, token string) (*websocket.Conn, error) {
	u := "ws" + strings.TrimPrefix(l.hub, "http") + "/v1/ws"
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(64 << 20)
	return c, nil
}

func writeFrames(ctx context.Context, c *websocket.Conn, frames ...wire.Frame) error {
	b, err := wire.Marshal(wire.CBOR, frames)
	if err != nil {
		return err
	}
	return c.Write(ctx, websocket.MessageBinary, b)
}

func readFrames(ctx context.Context, c *websocket.Conn) ([]wire.Frame, error) {
	_, b, err := c.Read(ctx)
	if err != nil {
		return nil, err
	}
	var frames []wire.Frame
	return frames, wire.Unmarshal(wire.CBOR, b, &frames)
}

// rss returns the hub's resident memory in bytes, or 0 without -pid.
func (l *loader) rss() int64 {
	if l.pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", l.pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
