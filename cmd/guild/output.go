package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/guildhall/guildhall/client"
	"github.com/guildhall/guildhall/policy"
	"github.com/guildhall/guildhall/wire"
)

// Each result has a JSON form (its fields) and a human one (Human).

type message string

func (m message) Human() string { return string(m) }

// MarshalJSON makes a message one JSON object, {"message": …}, like every
// other command's --json output.
func (m message) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Message string `json:"message"`
	}{string(m)})
}

// rawOut is output printed as it came (a CSV or JSON-lines export), with or
// without --json.
type rawOut []byte

type phraseOut string

func (p phraseOut) Human() string { return string(p) }

type identityOut struct {
	Identity         policy.PublicKey `json:"identity"`
	Device           policy.PublicKey `json:"device"`
	DeviceName       string           `json:"device_name,omitempty"`
	HoldsIdentityKey bool             `json:"holds_identity_key,omitempty"`
	Expires          time.Time        `json:"device_expires,omitzero"`
	Phrase           string           `json:"recovery_phrase,omitempty"`
}

func (o identityOut) Human() string {
	s := fmt.Sprintf("identity %s\ndevice   %s", o.Identity, o.Device)
	if o.DeviceName != "" {
		s += " (" + o.DeviceName + ")"
	}
	if !o.Expires.IsZero() {
		s += fmt.Sprintf("\ndevice certificate valid until %s", o.Expires.Format(time.DateOnly))
	}
	if o.Phrase != "" {
		s += "\n\nrecovery phrase (write it down; anyone holding it is you):\n" + o.Phrase
	}
	return s
}

type tokenOut struct {
	Token string `json:"token"`
	Next  string `json:"next,omitempty"`
}

func (o tokenOut) Human() string { return o.Token + "\n\n" + o.Next }

type idOut struct {
	Kind string    `json:"kind"`
	ID   policy.ID `json:"id"`
	Name string    `json:"name,omitempty"`
}

func (o idOut) Human() string { return fmt.Sprintf("%s %s %s", o.Kind, o.Name, o.ID) }

type serverItem struct {
	ID      policy.ID `json:"id"`
	Name    string    `json:"name"`
	Members int       `json:"members"`
	Hubs    []string  `json:"hubs"`
}

type serverList []serverItem

func (l serverList) Human() string {
	if len(l) == 0 {
		return "no servers (guild server create, or guild join)"
	}
	var b strings.Builder
	for _, s := range l {
		fmt.Fprintf(&b, "%-20s %s  %d members  %s\n", s.Name, s.ID, s.Members, strings.Join(s.Hubs, " "))
	}
	return strings.TrimRight(b.String(), "\n")
}

type stateOut struct {
	ID       policy.ID    `json:"id"`
	Name     string       `json:"name"`
	Everyone string       `json:"everyone"`
	Public   bool         `json:"public_history"`
	Channels []channelOut `json:"channels"`
	Roles    []roleOut    `json:"roles"`
	Members  []memberOut  `json:"members"`
}

type channelOut struct {
	ID         policy.ID `json:"id"`
	Name       string    `json:"name"`
	Durability string    `json:"durability"`
	Archived   bool      `json:"archived,omitempty"`
	Readers    int       `json:"readers"`
}

type roleOut struct {
	ID    policy.ID `json:"id"`
	Name  string    `json:"name"`
	Rank  uint32    `json:"rank"`
	Perms string    `json:"perms"`
}

type memberOut struct {
	Identity policy.PublicKey `json:"identity"`
	Rank     int64            `json:"rank"`
	Roles    []string         `json:"roles,omitempty"`
}

func showState(id policy.ID, st *policy.State) stateOut {
	p := st.Policy()
	out := stateOut{ID: id, Name: p.Name, Everyone: p.Everyone.String(), Public: p.PublicHistory}
	names := map[policy.ID]string{}
	for _, r := range st.Roles() {
		names[r.ID] = r.Name
		out.Roles = append(out.Roles, roleOut{ID: r.ID, Name: r.Name, Rank: r.Rank, Perms: r.Perms.String()})
	}
	for _, c := range st.Channels() {
		out.Channels = append(out.Channels, channelOut{ID: c.ID, Name: c.Name, Durability: c.Durability.String(), Archived: c.Archived, Readers: len(st.Readers(c.ID))})
	}
	for _, m := range st.Members() {
		mo := memberOut{Identity: m, Rank: st.Rank(m)}
		for _, r := range st.MemberRoles(m) {
			mo.Roles = append(mo.Roles, names[r])
		}
		out.Members = append(out.Members, mo)
	}
	return out
}

func (o stateOut) Human() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s\neveryone may: %s", o.Name, o.ID, o.Everyone)
	if o.Public {
		b.WriteString("  (history public)")
	}
	b.WriteString("\n\nchannels:\n")
	for _, c := range o.Channels {
		fmt.Fprintf(&b, "  #%-18s %-10s %d readers  %s\n", c.Name, c.Durability, c.Readers, c.ID)
	}
	b.WriteString("roles:\n")
	for _, r := range o.Roles {
		fmt.Fprintf(&b, "  %-19s rank %-4d %s\n", r.Name, r.Rank, r.Perms)
	}
	b.WriteString("members:\n")
	for _, m := range o.Members {
		fmt.Fprintf(&b, "  %s  %s\n", m.Identity, strings.Join(m.Roles, ", "))
	}
	return strings.TrimRight(b.String(), "\n")
}

type receiptOut struct {
	Hub      policy.PublicKey `json:"hub"`
	Seq      uint64           `json:"seq"`
	StoredAt time.Time        `json:"stored_at"`
}

type sentOut struct {
	ID       policy.ID    `json:"id"`
	Receipts []receiptOut `json:"receipts"`
	Refused  []string     `json:"refused,omitempty"`
}

func (o sentOut) Human() string {
	s := fmt.Sprintf("sent %s", o.ID)
	for _, r := range o.Receipts {
		s += fmt.Sprintf("\n  stored by hub %s (seq %d), receipt verified", r.Hub, r.Seq)
	}
	for _, r := range o.Refused {
		s += "\n  refused: " + r
	}
	return s
}

type msgOut struct {
	ID      policy.ID        `json:"id"`
	Sender  policy.PublicKey `json:"sender"`
	Name    string           `json:"sender_name,omitempty"`
	Time    time.Time        `json:"time"`
	Text    string           `json:"text,omitempty"`
	Files   []string         `json:"files,omitempty"`
	Deleted bool             `json:"deleted,omitempty"`
	Error   string           `json:"error,omitempty"`
}

func toMsg(m client.Message, names map[policy.PublicKey]string) msgOut {
	o := msgOut{ID: m.ID, Sender: m.Sender, Time: m.Time, Text: m.Body.Text, Deleted: m.Deleted, Name: names[m.Sender]}
	for _, f := range m.Body.Files {
		o.Files = append(o.Files, fmt.Sprintf("%s (%d bytes)", f.Name, f.Size))
	}
	if m.Err != nil {
		o.Error = m.Err.Error()
	}
	return o
}

type historyOut []msgOut

func (h historyOut) Human() string {
	var b strings.Builder
	for _, m := range h {
		who := m.Name
		if who == "" {
			who = m.Sender.String()[:14]
		}
		text := m.Text
		switch {
		case m.Deleted:
			text = "(deleted)"
		case m.Error != "":
			text = "(cannot decrypt: this device holds no key for its epoch)"
		}
		fmt.Fprintf(&b, "%s  %s: %s", m.Time.Format("2006-01-02 15:04:05"), who, text)
		for _, f := range m.Files {
			fmt.Fprintf(&b, "  [file %s]", f)
		}
		fmt.Fprintf(&b, "  (%s)\n", m.ID.String()[:16])
	}
	return strings.TrimRight(b.String(), "\n")
}

type tenantsOut wire.Tenants

func (t tenantsOut) Human() string {
	var b strings.Builder
	for _, x := range t.Tenants {
		state := "active"
		if x.Suspended {
			state = "suspended"
		}
		if x.Label != "" {
			state += "  " + strconv.Quote(x.Label)
		}
		fmt.Fprintf(&b, "%s  %s  %d bytes / %s, %d envelopes / %s, %d blobs / %s\n", x.Server, state,
			x.Usage.Bytes, limit(x.Quota.Bytes), x.Usage.Envelopes, limit(x.Quota.Envelopes), x.Usage.Blobs, limit(x.Quota.Blobs))
	}
	if b.Len() == 0 {
		return "no tenants"
	}
	return strings.TrimRight(b.String(), "\n")
}

func limit(v uint64) string {
	if v == 0 {
		return "unlimited"
	}
	return fmt.Sprint(v)
}

// turnOut is an RTCIceServer (as WebRTC's RTCPeerConnection takes it),
// with the TTL and expiry of the TURN REST API's answer.
type turnOut struct {
	URLs       []string  `json:"urls"`
	Username   string    `json:"username"`
	Credential string    `json:"credential"`
	TTL        int64     `json:"ttl"` // seconds
	Expires    time.Time `json:"expires"`
}

func (o turnOut) Human() string {
	s := fmt.Sprintf("username %s\ncredential %s\nvalid until %s (ttl %ds)", o.Username, o.Credential, o.Expires.Format(time.RFC3339), o.TTL)
	for _, u := range o.URLs {
		s += "\nurl " + u
	}
	return s
}
