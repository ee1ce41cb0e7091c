package policy

// CheckHistoryEvents decides whether a copy of a server's state log, brought
// to a hub that does not host the server yet, is fit to be taken as history
// at now (Unix ms): every event belongs to server, the genesis is among
// them, and none is dated more than MaxClockSkew ahead of now, so no
// future-dated head enters a log through a hub. Older events are history,
// not live acts: the hub then takes them as it takes a peer's
// (Log.Replicable), whoever brought them. A member's client brings such a
// copy with the act that makes the hub a host (a storage grant naming it, a
// join its owner makes through it as a home node); a peer hub, when the
// server's state lets this hub replicate it.
func CheckHistoryEvents(server ID, events []*Event, now int64) error {
	if err := CheckServerEvents(server, events); err != nil {
		return err
	}
	genesis := false
	for _, e := range events {
		if e.ID == server {
			genesis = true
		}
		if e.Time > now+MaxClockSkew {
			return errf(CodeClock, "event %s is dated %d, more than %d ms ahead of now (%d)", e.ID, e.Time, MaxClockSkew, now)
		}
	}
	if !genesis {
		return errf(CodeMalformed, "a copy of server %s's state log without its genesis", server)
	}
	return nil
}
