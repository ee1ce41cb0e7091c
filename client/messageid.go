package client

import (
	"context"
	"fmt"
	"strings"

	"github.com/guildhall/guildhall/policy"
)

// MinMessagePrefix is the shortest message ID prefix ResolveMessage takes
// after the "bafkrei" every ID starts with: short enough to type, long
// enough that a prefix rarely matches two messages.
const MinMessagePrefix = 4

// ResolveMessage finds the stored message of a server whose ID is id or
// begins with it (as "guild history" shows IDs cut short), as git resolves
// abbreviated commits: a prefix matching no message is ErrUnknown, one
// matching several is refused, naming how many.
func (c *Client) ResolveMessage(ctx context.Context, server policy.ID, id string) (policy.ID, error) {
	if full, err := policy.ParseID(id); err == nil {
		return full, nil
	}
	if !strings.HasPrefix(id, "bafkrei") || len(id) < len("bafkrei")+MinMessagePrefix {
		return policy.ID{}, fmt.Errorf("%w: %q is not a message ID or a prefix of one (at least %d characters, as history shows)", ErrUnknown, id, len("bafkrei")+MinMessagePrefix)
	}
	ids, err := c.st.messageIDs(ctx, server)
	if err != nil {
		return policy.ID{}, err
	}
	var found []policy.ID
	for _, m := range ids {
		if strings.HasPrefix(m.String(), id) {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return policy.ID{}, fmt.Errorf("%w: no message %s… here (sync first?)", ErrUnknown, id)
	}
	return policy.ID{}, fmt.Errorf("%d messages have IDs starting %s: give more of the ID", len(found), id)
}
