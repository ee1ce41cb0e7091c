package client

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/reconcile"
)

// store is the client's local database: keys, the state logs it verified,
// device certificates it has seen, channel keys, and decrypted history. It
// lives in one SQLite file, mode 0600 in a 0700 directory: it holds private
// keys and plaintext, and is the one place plaintext is kept.
//
// Every statement the client runs is one of its methods, and every method
// returns its error wrapped in ErrStore, so that a caller can tell a local
// failure (which must never be counted as success) from a hub's refusal.
type store struct {
	db  *sql.DB
	dir string
}

const schema = `
CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS servers (id BLOB PRIMARY KEY, hubs TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (server BLOB NOT NULL, id BLOB NOT NULL, raw BLOB NOT NULL, PRIMARY KEY (server, id));
CREATE TABLE IF NOT EXISTS devices (device BLOB PRIMARY KEY, identity BLOB NOT NULL, cert BLOB NOT NULL, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS devices_identity ON devices (identity);
CREATE TABLE IF NOT EXISTS epoch_keys (server BLOB NOT NULL, channel BLOB NOT NULL, epoch INTEGER NOT NULL, key_id BLOB NOT NULL, key BLOB NOT NULL,
  recipients BLOB NOT NULL, PRIMARY KEY (server, channel, epoch, key_id));
CREATE TABLE IF NOT EXISTS bundle_refs (server BLOB NOT NULL, channel BLOB NOT NULL, epoch INTEGER NOT NULL, id BLOB NOT NULL,
  PRIMARY KEY (server, channel, epoch, id));
CREATE TABLE IF NOT EXISTS epochs_seen (server BLOB NOT NULL, channel BLOB NOT NULL, epoch INTEGER NOT NULL, PRIMARY KEY (server, channel, epoch));
CREATE TABLE IF NOT EXISTS messages (id BLOB PRIMARY KEY, server BLOB NOT NULL, channel BLOB NOT NULL, sender BLOB NOT NULL,
  time INTEGER NOT NULL, epoch INTEGER NOT NULL, kind INTEGER NOT NULL, raw BLOB NOT NULL, body BLOB, deleted INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS messages_channel ON messages (server, channel, time, id);
CREATE INDEX IF NOT EXISTS messages_undecrypted ON messages (server, channel, epoch) WHERE body IS NULL AND kind = 1;
CREATE TABLE IF NOT EXISTS cursors (hub TEXT NOT NULL, server BLOB NOT NULL, channel BLOB NOT NULL, after INTEGER NOT NULL,
  PRIMARY KEY (hub, server, channel));
`

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "client.db")
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600); err == nil {
		f.Close()
	} else {
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(on)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one writer; the client is one process
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("client: local store %s: %w", path, err)
	}
	// Stores made before cursors named the hub's incarnation, and before
	// keys could come unverified, gain the columns.
	for _, alter := range []string{
		`ALTER TABLE cursors ADD COLUMN incarnation TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE epoch_keys ADD COLUMN verified INTEGER NOT NULL DEFAULT 1`,
	} {
		if _, err := db.Exec(alter); err != nil && !strings.Contains(err.Error(), "duplicate column") {
			db.Close()
			return nil, fmt.Errorf("client: local store %s: %w", path, err)
		}
	}
	return &store{db: db, dir: dir}, nil
}

func (s *store) close() error { return s.db.Close() }

// failed wraps a store error in ErrStore with the operation's name.
func failed(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %s: %w", ErrStore, op, err)
}

// queryAll runs a query and scans each row with scan.
func queryAll[T any](ctx context.Context, db *sql.DB, op string, scan func(*sql.Rows) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, failed(op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, failed(op, err)
		}
		out = append(out, v)
	}
	return out, failed(op, rows.Err())
}

// scanBytes scans a row of one BLOB column.
func scanBytes(rows *sql.Rows) ([]byte, error) {
	var b []byte
	err := rows.Scan(&b)
	return b, err
}

func (s *store) get(ctx context.Context, k string) ([]byte, error) {
	var v []byte
	err := s.db.QueryRowContext(ctx, "SELECT v FROM kv WHERE k = ?", k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return v, failed("get "+k, err)
}

func (s *store) put(ctx context.Context, k string, v []byte) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", k, v)
	return failed("put "+k, err)
}

// addServer records a server with hubs, keeping the hubs already known
// first.
func (s *store) addServer(ctx context.Context, id policy.ID, hubs []string) error {
	old, err := s.hubs(ctx, id)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var all []string
	for _, h := range append(old, hubs...) {
		if !seen[h] {
			seen[h] = true
			all = append(all, h)
		}
	}
	return s.setHubs(ctx, id, all)
}

// setHubs replaces a server's hubs, in the order reads try them.
func (s *store) setHubs(ctx context.Context, id policy.ID, hubs []string) error {
	b, err := json.Marshal(hubs)
	if err == nil {
		_, err = s.db.ExecContext(ctx, "INSERT INTO servers (id, hubs) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET hubs = excluded.hubs", id[:], string(b))
	}
	return failed("set hubs", err)
}

func (s *store) hubs(ctx context.Context, id policy.ID) ([]string, error) {
	var js string
	err := s.db.QueryRowContext(ctx, "SELECT hubs FROM servers WHERE id = ?", id[:]).Scan(&js)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	var hubs []string
	if err == nil {
		err = json.Unmarshal([]byte(js), &hubs)
	}
	return hubs, failed("hubs", err)
}

func (s *store) servers(ctx context.Context) ([]policy.ID, error) {
	return queryAll(ctx, s.db, "servers", func(rows *sql.Rows) (policy.ID, error) {
		b, err := scanBytes(rows)
		return policy.ID(b), err
	}, "SELECT id FROM servers ORDER BY id")
}

// hasServer reports whether a server is known here.
func (s *store) hasServer(ctx context.Context, id policy.ID) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM servers WHERE id = ?", id[:]).Scan(&n)
	return n > 0, failed("has server", err)
}

// removeServer forgets a server here: its hubs, state log, keys, cursors
// and history, in one transaction.
func (s *store) removeServer(ctx context.Context, id policy.ID) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return failed("remove server", err)
	}
	defer tx.Rollback()
	for _, q := range []string{"DELETE FROM servers WHERE id = ?", "DELETE FROM events WHERE server = ?", "DELETE FROM epoch_keys WHERE server = ?",
		"DELETE FROM bundle_refs WHERE server = ?", "DELETE FROM epochs_seen WHERE server = ?", "DELETE FROM messages WHERE server = ?",
		"DELETE FROM cursors WHERE server = ?"} {
		if _, err := tx.ExecContext(ctx, q, id[:]); err != nil {
			return failed("remove server", err)
		}
	}
	// and where its state log was last read at each hub (stateCursorKey)
	if _, err := tx.ExecContext(ctx, "DELETE FROM kv WHERE k >= ? AND k < ?", "state-cursor "+id.String()+" ", "state-cursor "+id.String()+"!"); err != nil {
		return failed("remove server", err)
	}
	return failed("remove server", tx.Commit())
}

// addEvents stores verified state events; it returns how many were new.
func (s *store) addEvents(ctx context.Context, server policy.ID, events []*policy.Event) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, failed("add events", err)
	}
	defer tx.Rollback()
	n := 0
	for _, e := range events {
		res, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO events (server, id, raw) VALUES (?, ?, ?)", server[:], e.ID[:], e.Raw)
		if err != nil {
			return 0, failed("add events", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return 0, failed("add events", err)
		}
		n += int(k)
	}
	return n, failed("add events", tx.Commit())
}

func (s *store) events(ctx context.Context, server policy.ID) ([][]byte, error) {
	return queryAll(ctx, s.db, "events", scanBytes, "SELECT raw FROM events WHERE server = ?", server[:])
}

// addDevice remembers a verified device certificate (the newest per device).
func (s *store) addDevice(ctx context.Context, c *policy.DeviceCert) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO devices (device, identity, cert, expires) VALUES (?, ?, ?, ?)
		ON CONFLICT (device) DO UPDATE SET cert = excluded.cert, expires = excluded.expires WHERE excluded.expires > devices.expires`,
		c.Device[:], c.Identity[:], c.Raw, c.Expires)
	return failed("add device", err)
}

// devicesOf returns the certificates seen for identities.
func (s *store) devicesOf(ctx context.Context, ids []policy.PublicKey) ([]*policy.DeviceCert, error) {
	var out []*policy.DeviceCert
	for _, id := range ids {
		raws, err := queryAll(ctx, s.db, "devices", scanBytes, "SELECT cert FROM devices WHERE identity = ?", id[:])
		if err != nil {
			return nil, err
		}
		for _, b := range raws {
			if c, err := policy.ParseDeviceCert(b); err == nil {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// identityOf returns the identity a device was certified for, if this
// client has seen its certificate.
func (s *store) identityOf(ctx context.Context, device policy.PublicKey) (policy.PublicKey, bool, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, "SELECT identity FROM devices WHERE device = ?", device[:]).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return policy.PublicKey{}, false, nil
	}
	if err != nil {
		return policy.PublicKey{}, false, failed("identity of device", err)
	}
	return policy.PublicKey(b), true, nil
}

type epochKey struct {
	Epoch      uint64
	ID         [8]byte
	Key        []byte
	Recipients []policy.PublicKey // the devices it was sealed to, as far as this device saw
	// Verified: learned from a signed bundle envelope this device checked.
	// A key the hub served as this device's entry alone (keys endpoint) is
	// only read with, until its bundles are fetched (fetchBundles).
	Verified bool
}

func (s *store) addKey(ctx context.Context, server, channel policy.ID, k epochKey) error {
	var rcpt []byte
	for _, d := range k.Recipients {
		rcpt = append(rcpt, d[:]...)
	}
	_, err := s.db.ExecContext(ctx, "INSERT OR IGNORE INTO epoch_keys (server, channel, epoch, key_id, key, recipients, verified) VALUES (?, ?, ?, ?, ?, ?, ?)",
		server[:], channel[:], int64(k.Epoch), k.ID[:], k.Key, rcpt, k.Verified)
	if err != nil {
		return failed("add key", err)
	}
	if k.Verified {
		if _, err := s.db.ExecContext(ctx, "UPDATE epoch_keys SET verified = 1 WHERE server = ? AND channel = ? AND epoch = ? AND key_id = ?",
			server[:], channel[:], int64(k.Epoch), k.ID[:]); err != nil {
			return failed("add key", err)
		}
	}
	return s.sawEpoch(ctx, server, channel, k.Epoch)
}

// bundles returns the stored key bundles of an epoch.
func (s *store) bundles(ctx context.Context, server, channel policy.ID, epoch uint64) ([][]byte, error) {
	return queryAll(ctx, s.db, "bundles", scanBytes,
		"SELECT raw FROM messages WHERE server = ? AND channel = ? AND epoch = ? AND kind = 2", server[:], channel[:], int64(epoch))
}

// addBundleRef records a key bundle of an epoch that a hub left out of a
// read (its ID), so that it can be fetched when this device sends.
func (s *store) addBundleRef(ctx context.Context, server, channel policy.ID, epoch uint64, id policy.ID) error {
	_, err := s.db.ExecContext(ctx, "INSERT OR IGNORE INTO bundle_refs (server, channel, epoch, id) VALUES (?, ?, ?, ?)", server[:], channel[:], int64(epoch), id[:])
	if err != nil {
		return failed("bundle ref", err)
	}
	return s.sawEpoch(ctx, server, channel, epoch)
}

// missingBundles returns the IDs of an epoch's bundles known by reference
// and not stored here.
func (s *store) missingBundles(ctx context.Context, server, channel policy.ID, epoch uint64) ([]policy.ID, error) {
	return queryAll(ctx, s.db, "missing bundles", func(rows *sql.Rows) (policy.ID, error) {
		var id []byte
		err := rows.Scan(&id)
		return policy.ID(id), err
	}, "SELECT id FROM bundle_refs b WHERE server = ? AND channel = ? AND epoch = ? AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = b.id)", server[:], channel[:], int64(epoch))
}

// addRecipients records that a held key was also sealed to devices.
func (s *store) addRecipients(ctx context.Context, server, channel policy.ID, keyID [8]byte, devices []policy.PublicKey) error {
	var rcpt []byte
	err := s.db.QueryRowContext(ctx, "SELECT recipients FROM epoch_keys WHERE server = ? AND channel = ? AND key_id = ?", server[:], channel[:], keyID[:]).Scan(&rcpt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // a key this device does not hold
	}
	if err != nil {
		return failed("add recipients", err)
	}
	have := map[policy.PublicKey]bool{}
	for i := 0; i+32 <= len(rcpt); i += 32 {
		have[policy.PublicKey(rcpt[i:i+32])] = true
	}
	grew := false
	for _, d := range devices {
		if !have[d] {
			have[d], grew = true, true
			rcpt = append(rcpt, d[:]...)
		}
	}
	if !grew {
		return nil
	}
	_, err = s.db.ExecContext(ctx, "UPDATE epoch_keys SET recipients = ? WHERE server = ? AND channel = ? AND key_id = ?", rcpt, server[:], channel[:], keyID[:])
	return failed("add recipients", err)
}

func (s *store) sawEpoch(ctx context.Context, server, channel policy.ID, epoch uint64) error {
	_, err := s.db.ExecContext(ctx, "INSERT OR IGNORE INTO epochs_seen (server, channel, epoch) VALUES (?, ?, ?)", server[:], channel[:], int64(epoch))
	return failed("saw epoch", err)
}

// keys returns the channel's keys, newest epoch first and, within an
// epoch, the most recently learned first.
func (s *store) keys(ctx context.Context, server, channel policy.ID) ([]epochKey, error) {
	return queryAll(ctx, s.db, "keys", func(rows *sql.Rows) (epochKey, error) {
		var k epochKey
		var e int64
		var id, rcpt []byte
		if err := rows.Scan(&e, &id, &k.Key, &rcpt, &k.Verified); err != nil {
			return k, err
		}
		for i := 0; i+32 <= len(rcpt); i += 32 {
			k.Recipients = append(k.Recipients, policy.PublicKey(rcpt[i:i+32]))
		}
		k.Epoch = uint64(e)
		copy(k.ID[:], id)
		return k, nil
	}, "SELECT epoch, key_id, key, recipients, verified FROM epoch_keys WHERE server = ? AND channel = ? ORDER BY epoch DESC, rowid DESC", server[:], channel[:])
}

// maxEpoch returns the highest epoch seen in a channel (keys held or not).
func (s *store) maxEpoch(ctx context.Context, server, channel policy.ID) (uint64, error) {
	var e sql.NullInt64
	err := s.db.QueryRowContext(ctx, "SELECT MAX(epoch) FROM epochs_seen WHERE server = ? AND channel = ?", server[:], channel[:]).Scan(&e)
	return uint64(e.Int64), failed("max epoch", err)
}

// cursor returns a channel's cursor at a hub and the hub incarnation it
// belongs to ("" if unknown).
func (s *store) cursor(ctx context.Context, hub string, server, channel policy.ID) (uint64, string, error) {
	var n int64
	var inc string
	err := s.db.QueryRowContext(ctx, "SELECT after, incarnation FROM cursors WHERE hub = ? AND server = ? AND channel = ?", hub, server[:], channel[:]).Scan(&n, &inc)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	return uint64(n), inc, failed("cursor", err)
}

// setCursor moves a cursor forward within an incarnation (inc "": the one
// it has), or sets it outright for a new incarnation.
func (s *store) setCursor(ctx context.Context, hub string, server, channel policy.ID, after uint64, inc string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO cursors (hub, server, channel, after, incarnation) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (hub, server, channel) DO UPDATE SET
			after = CASE WHEN excluded.incarnation IN ('', incarnation) THEN MAX(after, excluded.after) ELSE excluded.after END,
			incarnation = CASE WHEN excluded.incarnation = '' THEN incarnation ELSE excluded.incarnation END`,
		hub, server[:], channel[:], int64(after), inc)
	return failed("set cursor", err)
}

// addMessage stores an envelope seen in a channel (once); kind is its
// payload kind (payloadMessage, payloadKeys).
func (s *store) addMessage(ctx context.Context, env *policy.Envelope, kind byte) error {
	_, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO messages (id, server, channel, sender, time, epoch, kind, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		env.ID[:], env.Server[:], env.Channel[:], env.Author[:], env.Time, int64(env.Epoch), int(kind), env.Raw)
	return failed("add message", err)
}

// hasMessage reports whether an envelope is stored.
func (s *store) hasMessage(ctx context.Context, id policy.ID) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM messages WHERE id = ?", id[:]).Scan(&n)
	return n > 0, failed("has message", err)
}

// setBody keeps a message's decrypted body (CBOR).
func (s *store) setBody(ctx context.Context, id policy.ID, body []byte) error {
	_, err := s.db.ExecContext(ctx, "UPDATE messages SET body = ? WHERE id = ?", body, id[:])
	return failed("set body", err)
}

// markDeleted records that a message was tombstoned; its body, if
// decrypted, is kept (the sender's or a moderator's deletion seen from a
// hub).
func (s *store) markDeleted(ctx context.Context, id policy.ID) error {
	_, err := s.db.ExecContext(ctx, "UPDATE messages SET deleted = 1 WHERE id = ?", id[:])
	return failed("mark deleted", err)
}

// erase records a deletion this device made and forgets the plaintext.
func (s *store) erase(ctx context.Context, id policy.ID) error {
	_, err := s.db.ExecContext(ctx, "UPDATE messages SET deleted = 1, body = NULL WHERE id = ?", id[:])
	return failed("erase message", err)
}

// messageChannel returns the channel and the sender's time of a stored
// message of a server.
func (s *store) messageChannel(ctx context.Context, server, id policy.ID) (policy.ID, int64, bool, error) {
	var ch []byte
	var at int64
	err := s.db.QueryRowContext(ctx, "SELECT channel, time FROM messages WHERE id = ? AND server = ?", id[:], server[:]).Scan(&ch, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return policy.ID{}, 0, false, nil
	}
	if err != nil {
		return policy.ID{}, 0, false, failed("message channel", err)
	}
	return policy.ID(ch), at, true, nil
}

// undecrypted returns the stored, undeleted messages of an epoch that
// have no body yet (they wait for the epoch's key).
func (s *store) undecrypted(ctx context.Context, server, channel policy.ID, epoch uint64) ([][]byte, error) {
	return queryAll(ctx, s.db, "undecrypted", scanBytes,
		"SELECT raw FROM messages WHERE server = ? AND channel = ? AND epoch = ? AND kind = 1 AND body IS NULL AND deleted = 0", server[:], channel[:], int64(epoch))
}

// storedMessage is a message row: the body is its CBOR, nil until
// decrypted (or once erased).
type storedMessage struct {
	ID      policy.ID
	Sender  policy.PublicKey
	Time    int64
	Epoch   uint64
	Body    []byte
	Deleted bool
	Raw     []byte
}

// history returns a channel's messages (not key bundles), oldest first;
// with limit > 0, the newest limit of them.
func (s *store) history(ctx context.Context, server, channel policy.ID, limit int) ([]storedMessage, error) {
	q := "SELECT id, sender, time, epoch, body, deleted, raw FROM messages WHERE server = ? AND channel = ? AND kind = 1 ORDER BY time, id"
	args := []any{server[:], channel[:]}
	if limit > 0 {
		q = "SELECT * FROM (SELECT id, sender, time, epoch, body, deleted, raw FROM messages WHERE server = ? AND channel = ? AND kind = 1 ORDER BY time DESC, id DESC LIMIT ?) ORDER BY time, id"
		args = append(args, limit)
	}
	return queryAll(ctx, s.db, "history", func(rows *sql.Rows) (storedMessage, error) {
		var id, sender []byte
		var m storedMessage
		var epoch int64
		err := rows.Scan(&id, &sender, &m.Time, &epoch, &m.Body, &m.Deleted, &m.Raw)
		m.ID, m.Sender, m.Epoch = policy.ID(id), policy.PublicKey(sender), uint64(epoch)
		return m, err
	}, q, args...)
}

// profileBody is a decrypted message body and its sender.
type profileBody struct {
	Sender policy.PublicKey
	Body   []byte
}

// profileBodies returns the decrypted bodies of a server's messages that
// may carry a profile, oldest first.
func (s *store) profileBodies(ctx context.Context, server policy.ID) ([]profileBody, error) {
	return queryAll(ctx, s.db, "profiles", func(rows *sql.Rows) (profileBody, error) {
		var p profileBody
		var sender []byte
		err := rows.Scan(&sender, &p.Body)
		p.Sender = policy.PublicKey(sender)
		return p, err
	}, "SELECT sender, body FROM messages WHERE server = ? AND kind = 1 AND body IS NOT NULL AND deleted = 0 ORDER BY time, id", server[:])
}

// messageIDs returns the IDs of a server's stored envelopes.
func (s *store) messageIDs(ctx context.Context, server policy.ID) ([]policy.ID, error) {
	return queryAll(ctx, s.db, "message ids", func(rows *sql.Rows) (policy.ID, error) {
		var id []byte
		err := rows.Scan(&id)
		return policy.ID(id), err
	}, "SELECT id FROM messages WHERE server = ? AND kind = 1", server[:])
}

// messageRaw returns a stored, undeleted envelope's signed bytes, or nil.
func (s *store) messageRaw(ctx context.Context, id policy.ID) ([]byte, error) {
	var raw []byte
	err := s.db.QueryRowContext(ctx, "SELECT raw FROM messages WHERE id = ? AND deleted = 0", id[:]).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return raw, failed("message raw", err)
}

// heldKeys returns the reconciliation keys of every envelope held of a
// channel.
func (s *store) heldKeys(ctx context.Context, server, channel policy.ID) ([]reconcile.Key, error) {
	return queryAll(ctx, s.db, "held keys", func(rows *sql.Rows) (reconcile.Key, error) {
		var k reconcile.Key
		var id []byte
		err := rows.Scan(&k.Time, &id)
		k.ID = policy.ID(id)
		return k, err
	}, "SELECT time, id FROM messages WHERE server = ? AND channel = ?", server[:], channel[:])
}
