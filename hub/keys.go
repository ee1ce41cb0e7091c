package hub

import (
	"bytes"
	"context"
	"fmt"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/storage"
)

// indexStored records what the hub indexes of envelopes just stored: the
// blobs each names (so that deleting the last envelope naming a blob
// releases it) and the entries of key bundles (indexKeys).
func (s *Service) indexStored(ctx context.Context, envs []storage.Envelope, cts [][]byte, blobs [][]policy.ID, stored []storage.Stored) {
	for i, e := range envs {
		if !stored[i].Duplicate && len(blobs[i]) > 0 {
			if err := s.cfg.Store.AddEnvelopeBlobs(ctx, e.Server, e.ID, blobs[i]); err != nil {
				s.cfg.Logger.Warn("hub: recording an envelope's blobs", "envelope", e.ID, "err", err)
			}
		}
	}
	s.indexKeys(ctx, envs, cts, stored)
}

// indexKeys records, for each key-bundle envelope just stored, where each
// recipient device's sealed key lies in it (policy.ParseKeyBundle), so that
// KeysFor serves a device its own entries. A bundle whose header does not
// parse is stored all the same (its ciphertext is the clients' business)
// and simply not indexed; its readers find it by cursor. The index is
// derived: a failure to write it is logged, and costs only the fallback.
func (s *Service) indexKeys(ctx context.Context, envs []storage.Envelope, cts [][]byte, stored []storage.Stored) {
	var entries []storage.KeyEntry
	for i, e := range envs {
		if stored[i].Duplicate || len(cts[i]) == 0 || cts[i][0] != policy.PayloadKeys {
			continue
		}
		b, err := policy.ParseKeyBundle(cts[i])
		if err != nil {
			s.metrics.keyBundles.WithLabelValues("unparsed").Inc()
			continue
		}
		base := bytes.LastIndex(e.Raw, cts[i])
		if base < 0 {
			continue
		}
		for _, en := range b.Entries {
			entries = append(entries, storage.KeyEntry{Server: e.Server, Channel: e.Channel, Device: en.Device, Seq: stored[i].Seq,
				Envelope: e.ID, Epoch: b.Epoch, KeyID: b.KeyID, Off: base + en.Off, Len: en.Len})
		}
		s.metrics.keyBundles.WithLabelValues("indexed").Inc()
	}
	if err := s.cfg.Store.PutKeyEntries(ctx, entries); err != nil {
		s.cfg.Logger.Warn("hub: indexing key bundles", "err", err)
	}
}

// MaxKeyPage bounds one page of KeysFor.
const MaxKeyPage = 1000

// KeysFor returns the entries of a channel's key bundles sealed to the
// caller's device, after a bundle sequence number: one entry (about 1.2 KB
// for a hybrid key) per key, whatever the number of readers. The caller
// must be a reader of the channel and have a session with a device
// (ErrUnauthenticated without one, even where history is public).
func (s *Service) KeysFor(ctx context.Context, r Caller, server, channel policy.ID, after uint64, limit int) ([]storage.SealedKey, error) {
	if limit <= 0 || limit > MaxKeyPage {
		return nil, fmt.Errorf("%w: limit %d, want 1..%d", ErrBadRequest, limit, MaxKeyPage)
	}
	if err := s.MayRead(ctx, server, channel, r); err != nil {
		return nil, err
	}
	if r.Device.IsZero() {
		return nil, fmt.Errorf("%w: keys are served to a device: log in with one", ErrUnauthenticated)
	}
	return s.cfg.Store.ReadKeyEntries(ctx, server, channel, r.Device, after, limit)
}
