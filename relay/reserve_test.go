package relay

import (
	"fmt"
	"sync"
	"testing"

	"github.com/pion/stun/v3"
)

// RTP/RTCP pairs (EVEN-PORT with a reservation, then RESERVATION-TOKEN for
// the next port, coturn's client's default mode) get their pair while
// other allocations take ports at random beside them: the reserved port is
// held by the relay, never handed to someone else.
func TestReservedPortsAreHeld(t *testing.T) {
	r := startRelay(t, func(c *Config) { c.PortMin, c.PortMax = 41000, 41127 })
	const pairs, singles = 16, 32
	var wg sync.WaitGroup
	errs := make(chan string, pairs+singles)
	// Each client from its own loopback address, under the per-source
	// challenge rate.
	for i := range pairs {
		rtp := dialRaw(t, r, "udp", fmt.Sprintf("127.0.2.%d", i+1), "alice", "wonderland")
		rtcp := dialRaw(t, r, "udp", fmt.Sprintf("127.0.3.%d", i+1), "alice", "wonderland")
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, m := rtp.request(stun.MethodAllocate, transport(17), stun.RawAttribute{Type: stun.AttrEvenPort, Value: []byte{0x80}})
			if code != 0 {
				errs <- "EVEN-PORT allocate: " + fmt.Sprint(code)
				return
			}
			token, err := m.Get(stun.AttrReservationToken)
			if err != nil {
				errs <- "no RESERVATION-TOKEN in the EVEN-PORT answer"
				return
			}
			var even stun.XORMappedAddress
			even.GetFromAs(m, stun.AttrXORRelayedAddress)
			code, m = rtcp.request(stun.MethodAllocate, transport(17), stun.RawAttribute{Type: stun.AttrReservationToken, Value: token})
			if code != 0 {
				errs <- "RESERVATION-TOKEN allocate: " + fmt.Sprint(code)
				return
			}
			var odd stun.XORMappedAddress
			odd.GetFromAs(m, stun.AttrXORRelayedAddress)
			if even.Port%2 != 0 || odd.Port != even.Port+1 {
				errs <- fmt.Sprintf("a pair of ports %d and %d", even.Port, odd.Port)
			}
		}()
	}
	for i := range singles {
		c := dialRaw(t, r, "udp", fmt.Sprintf("127.0.4.%d", i+1), "mallory", "evil")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _ := c.request(stun.MethodAllocate, transport(17)); code != 0 {
				errs <- "allocate: " + fmt.Sprint(code)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
