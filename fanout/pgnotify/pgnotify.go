// Package pgnotify carries fanout notes between hub processes that share
// one PostgreSQL database, with LISTEN/NOTIFY: each process announces what
// it stored, and the others fan it out to their own subscribers. Payloads
// hold identifiers and cursors only (never content), and a process ignores
// its own notes.
//
// Notifications are not durable: a listener that reconnects may have missed
// some, so it reports the reconnection (Handler.Resync) and its subscribers
// catch up from storage by cursor, which is the source of truth.
package pgnotify

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/guildhall/guildhall/fanout"
)

const (
	noteLen    = 32 + 32 + 8 + 32
	maxPayload = 7900 // PostgreSQL's limit is 8000 bytes
)

// Config configures a Bus.
type Config struct {
	// URL of the shared database.
	URL string
	// Channel is the notification channel; default "guildhall_fanout".
	Channel string
	// Logger; default discards.
	Logger *slog.Logger
}

// Handler receives what other processes announced.
type Handler interface {
	// Remote handles one note of another process.
	Remote(ctx context.Context, n fanout.Note) error
	// Resync is called after the listener reconnected: notes may have been
	// missed in between.
	Resync(ctx context.Context)
}

// Bus sends and receives notes.
type Bus struct {
	cfg    Config
	pool   *pgxpool.Pool
	origin string
}

// New connects a Bus.
func New(ctx context.Context, cfg Config) (*Bus, error) {
	if cfg.Channel == "" {
		cfg.Channel = "guildhall_fanout"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("pgnotify: %w", err)
	}
	pc.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("pgnotify: %w", err)
	}
	var o [8]byte
	rand.Read(o[:])
	return &Bus{cfg: cfg, pool: pool, origin: base64.RawURLEncoding.EncodeToString(o[:])}, nil
}

// Close releases the Bus's connections.
func (b *Bus) Close() { b.pool.Close() }

// Notify announces notes to the other processes, in as few notifications
// as fit PostgreSQL's payload limit, in one round trip.
func (b *Bus) Notify(ctx context.Context, notes []fanout.Note) error {
	if len(notes) == 0 {
		return nil
	}
	var batch pgx.Batch
	var sb strings.Builder
	flush := func() {
		if sb.Len() > 0 {
			batch.Queue("SELECT pg_notify($1, $2)", b.cfg.Channel, sb.String())
			sb.Reset()
		}
	}
	buf := make([]byte, 0, noteLen)
	for _, n := range notes {
		if n.Deleted {
			continue // other processes read tombstones from the shared store
		}
		if sb.Len() == 0 {
			sb.WriteString(b.origin)
		}
		buf = append(buf[:0], n.Server[:]...)
		buf = append(buf, n.Channel[:]...)
		buf = binary.BigEndian.AppendUint64(buf, n.Seq)
		buf = append(buf, n.ID[:]...)
		sb.WriteByte(' ')
		sb.WriteString(base64.RawURLEncoding.EncodeToString(buf))
		if sb.Len() > maxPayload-200 {
			flush()
		}
	}
	flush()
	return b.pool.SendBatch(ctx, &batch).Close()
}

// Listen delivers other processes' notes to h until ctx ends, reconnecting
// with backoff when the connection drops. It returns once listening the
// first time failed or ctx ended.
func (b *Bus) Listen(ctx context.Context, h Handler) error {
	conn, err := b.listen(ctx)
	if err != nil {
		return err
	}
	go func() {
		backoff := 100 * time.Millisecond
		for {
			err := b.receive(ctx, conn, h)
			conn.Release()
			if ctx.Err() != nil {
				return
			}
			b.cfg.Logger.Warn("pgnotify: listener lost its connection", "err", err)
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				if conn, err = b.listen(ctx); err == nil {
					break
				}
				backoff = min(2*backoff, 10*time.Second)
			}
			backoff = 100 * time.Millisecond
			h.Resync(ctx)
		}
	}()
	return nil
}

func (b *Bus) listen(ctx context.Context) (*pgxpool.Conn, error) {
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("pgnotify: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{b.cfg.Channel}.Sanitize()); err != nil {
		conn.Release()
		return nil, fmt.Errorf("pgnotify: %w", err)
	}
	return conn, nil
}

func (b *Bus) receive(ctx context.Context, conn *pgxpool.Conn, h Handler) error {
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		notes, err := b.decode(n.Payload)
		if err != nil {
			b.cfg.Logger.Warn("pgnotify: ignoring a malformed notification", "err", err)
			continue
		}
		for _, note := range notes {
			if err := h.Remote(ctx, note); err != nil && ctx.Err() == nil {
				b.cfg.Logger.Warn("pgnotify: handling a note", "err", err)
			}
		}
	}
}

// errMalformed marks a payload that is not a list of notes.
var errMalformed = errors.New("pgnotify: malformed payload")

// decode parses a payload; a process's own notes decode to nothing.
func (b *Bus) decode(p string) ([]fanout.Note, error) {
	fields := strings.Fields(p)
	if len(fields) == 0 {
		return nil, errMalformed
	}
	if fields[0] == b.origin {
		return nil, nil
	}
	notes := make([]fanout.Note, 0, len(fields)-1)
	for _, f := range fields[1:] {
		raw, err := base64.RawURLEncoding.DecodeString(f)
		if err != nil || len(raw) != noteLen {
			return nil, errMalformed
		}
		var n fanout.Note
		copy(n.Server[:], raw[:32])
		copy(n.Channel[:], raw[32:64])
		n.Seq = binary.BigEndian.Uint64(raw[64:72])
		copy(n.ID[:], raw[72:])
		notes = append(notes, n)
	}
	return notes, nil
}
