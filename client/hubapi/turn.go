package hubapi

import (
	"context"

	"github.com/guildhall/guildhall/wire"
)

// TURNCredentials asks the hub for TURN REST API credentials for the
// session's identity (GET /v1/turn/credentials), in the shape WebRTC's
// RTCIceServer takes. A hub whose operator set none answers with the code
// not_configured.
func (h *Client) TURNCredentials(ctx context.Context, token string) (wire.TURNCredentials, error) {
	var out wire.TURNCredentials
	err := h.call(ctx, "GET", "/v1/turn/credentials", token, nil, &out)
	return out, err
}
