package wire

// TURNCredentials is the answer of GET /v1/turn/credentials: TURN REST API
// credentials for the relays the hub names, in the shape of WebRTC's
// RTCIceServer (urls, username, credential), so that a page can pass it to
// RTCPeerConnection as one of its iceServers, plus their lifetime.
type TURNCredentials struct {
	URLs       []string `cbor:"1,keyasint" json:"urls"`
	Username   string   `cbor:"2,keyasint" json:"username"`
	Credential string   `cbor:"3,keyasint" json:"credential"`
	TTL        int64    `cbor:"4,keyasint" json:"ttl"`     // seconds
	Expires    int64    `cbor:"5,keyasint" json:"expires"` // Unix ms
}
