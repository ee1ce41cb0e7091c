package client

import (
	"context"
	"encoding/binary"

	"github.com/guildhall/guildhall/policy"
)

// Refresh brings the server's state log up to date cheaply before an act:
// from the first hub that answers, only the events it logged after this
// client's last read there. It returns how many were new. SyncState reads
// the whole log again (a hub restored from a backup renumbers its log).
func (c *Client) Refresh(ctx context.Context, server policy.ID) (int, error) {
	return c.syncState(ctx, server, "", true)
}

func stateCursorKey(hub string, server policy.ID) string {
	return "state-cursor " + server.String() + " " + hub
}

// stateCursor is where the last read of the server's state log at a hub
// ended (0: never read).
func (c *Client) stateCursor(ctx context.Context, hub string, server policy.ID) (uint64, error) {
	v, err := c.st.get(ctx, stateCursorKey(hub, server))
	if err != nil || len(v) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

func (c *Client) setStateCursor(ctx context.Context, hub string, server policy.ID, after uint64) error {
	return c.st.put(ctx, stateCursorKey(hub, server), binary.BigEndian.AppendUint64(nil, after))
}
