package wire

import "github.com/guildhall/guildhall/policy"

// TakedownRequest is the body of POST /v1/admin/takedowns: the operator
// removes an envelope or a blob of a server, or blocks the whole server.
type TakedownRequest struct {
	Server policy.ID `cbor:"1,keyasint" json:"server"`
	Kind   string    `cbor:"2,keyasint" json:"kind"`             // envelope, blob or server
	Target policy.ID `cbor:"3,keyasint,omitempty" json:"target"` // the envelope or blob; absent for a server
	Reason string    `cbor:"4,keyasint,omitempty" json:"reason,omitempty"`
}

// Takedown is a takedown as the admin API shows it.
type Takedown struct {
	Server policy.ID `cbor:"1,keyasint" json:"server"`
	Kind   string    `cbor:"2,keyasint" json:"kind"`
	Target policy.ID `cbor:"3,keyasint" json:"target"`
	Reason string    `cbor:"4,keyasint,omitempty" json:"reason,omitempty"`
	At     string    `cbor:"5,keyasint" json:"at"`     // RFC 3339, UTC, milliseconds
	Record []byte    `cbor:"6,keyasint" json:"record"` // the signed policy.Takedown
}

// Takedowns is a list of takedowns.
type Takedowns struct {
	Takedowns []Takedown `cbor:"1,keyasint" json:"takedowns"`
}

// AuditEntry is one act on the admin API, as the audit log keeps it.
type AuditEntry struct {
	Seq    uint64     `cbor:"1,keyasint" json:"seq"`
	At     string     `cbor:"2,keyasint" json:"at"` // RFC 3339, UTC, milliseconds
	Actor  string     `cbor:"3,keyasint" json:"actor"`
	Source string     `cbor:"4,keyasint" json:"source"`
	Action string     `cbor:"5,keyasint" json:"action"`
	Server *policy.ID `cbor:"6,keyasint,omitempty" json:"server,omitempty"`
	Target string     `cbor:"7,keyasint,omitempty" json:"target,omitempty"`
	Result string     `cbor:"8,keyasint" json:"result"` // ok, or the error code answered
}

// Audit is a page of the audit log.
type Audit struct {
	Entries []AuditEntry `cbor:"1,keyasint" json:"entries"`
	Next    uint64       `cbor:"2,keyasint" json:"next"`
	More    bool         `cbor:"3,keyasint" json:"more"`
}

// ReportRequest is the body of POST /v1/servers/{server}/reports: a
// member's abuse report of one message.
type ReportRequest struct {
	Envelope []byte `cbor:"1,keyasint" json:"envelope"` // the reported envelope's signed bytes
	Key      []byte `cbor:"2,keyasint" json:"key"`      // its message key (PROTOCOL §7 0x03), 32 bytes
	Reason   string `cbor:"3,keyasint,omitempty" json:"reason,omitempty"`
}

// ReportFiled answers a report.
type ReportFiled struct {
	Seq uint64 `cbor:"1,keyasint" json:"seq"`
}

// Report is an abuse report as the admin API shows it, with the message
// its evidence opens.
type Report struct {
	Seq      uint64           `cbor:"1,keyasint" json:"seq"`
	Server   policy.ID        `cbor:"2,keyasint" json:"server"`
	Channel  policy.ID        `cbor:"3,keyasint" json:"channel"`
	Envelope policy.ID        `cbor:"4,keyasint" json:"envelope"`
	Author   policy.PublicKey `cbor:"5,keyasint" json:"author"`
	Reporter policy.PublicKey `cbor:"6,keyasint" json:"reporter"`
	Reason   string           `cbor:"7,keyasint,omitempty" json:"reason,omitempty"`
	At       string           `cbor:"8,keyasint" json:"at"`                        // RFC 3339, UTC, milliseconds
	Body     []byte           `cbor:"9,keyasint" json:"body"`                      // the message body (CBOR, PROTOCOL §7)
	Text     string           `cbor:"10,keyasint,omitempty" json:"text,omitempty"` // its text, if any
	Evidence []byte           `cbor:"11,keyasint" json:"evidence"`                 // the envelope's signed bytes
	Key      []byte           `cbor:"12,keyasint" json:"key"`                      // the message key
}

// Reports is a page of abuse reports.
type Reports struct {
	Reports []Report `cbor:"1,keyasint" json:"reports"`
	Next    uint64   `cbor:"2,keyasint" json:"next"`
	More    bool     `cbor:"3,keyasint" json:"more"`
}
