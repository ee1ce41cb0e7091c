package client

import (
	"context"
	"fmt"

	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// Report reports one message to the operators of the server's hubs, with
// evidence they can check without reading anything else: the message's
// signed envelope and its own key (PROTOCOL §7 `0x03`), which opens that
// message only. The operator learns what the message says, who sent it and
// who reported it. It returns the hubs that took the report; it fails only
// when none did. Messages sealed before committed messages (0x01) cannot be
// reported alone.
func (c *Client) Report(ctx context.Context, server, message policy.ID, reason string) ([]string, error) {
	raw, err := c.st.messageRaw(ctx, message)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: no message %s here (sync first?)", ErrUnknown, message)
	}
	env, err := policy.ParseEnvelope(raw)
	if err != nil {
		return nil, err
	}
	if env.Server != server {
		return nil, fmt.Errorf("%w: message %s is not of this server", ErrUnknown, message)
	}
	keys, err := c.st.keys(ctx, server, env.Channel)
	if err != nil {
		return nil, err
	}
	key, err := messageKeyOf(keys, env.Epoch, env.Ciphertext)
	if err != nil {
		return nil, err
	}
	d, err := c.Device()
	if err != nil {
		return nil, err
	}
	hubs, err := c.st.hubs(ctx, server)
	if err != nil {
		return nil, err
	}
	var took []string
	var errs []error
	for _, url := range hubs {
		h := c.hub(url)
		token, err := h.Login(ctx, d)
		if err == nil {
			_, err = h.Report(ctx, token, server, wire.ReportRequest{Envelope: raw, Key: key, Reason: reason})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", url, err))
			continue
		}
		took = append(took, url)
	}
	if len(took) == 0 {
		return nil, fmt.Errorf("client: reporting %s: %w", message, noHub(errs))
	}
	return took, nil
}
