// Command turnload measures a TURN server: N allocations each keep a window
// of packets in flight through an echo peer (client -> server -> peer ->
// server -> client, over channel bindings), for a duration; it reports
// round trips per second and round-trip percentiles. With -hold it instead
// creates N idle allocations and reports the server's memory per
// allocation (-pid). It speaks TURN itself on the data path, so the
// client's own cost stays small and equal for every server measured. With
// -tcp the clients reach the server over TCP (one connection per
// allocation, STUN and ChannelData framed on the stream); the relayed leg
// to the peer stays UDP.
//
//	turnload -server 127.0.0.1:3478 -user u -pass p -allocs 32 -window 8 -size 160 -duration 10s
//	turnload -server 127.0.0.1:3478 -user u -pass p -allocs 10000 -hold -pid 1234
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	server := flag.String("server", "127.0.0.1:3478", "TURN server")
	tcp := flag.Bool("tcp", false, "reach the server over TCP instead of UDP")
	user := flag.String("user", "", "long-term user")
	pass := flag.String("pass", "", "password")
	realm := flag.String("realm", "", "realm (default: learned from the server)")
	allocs := flag.Int("allocs", 32, "allocations")
	window := flag.Int("window", 8, "packets in flight per allocation")
	size := flag.Int("size", 160, "payload bytes")
	dur := flag.Duration("duration", 10*time.Second, "measuring time")
	hold := flag.Bool("hold", false, "create idle allocations and report memory instead")
	pid := flag.Int("pid", 0, "the server's process ID (memory)")
	forwarder := flag.String("serve-forwarder", "", "instead: run a minimal UDP forwarder on this address (the machine's limit to compare with)")
	raw := flag.Bool("raw", false, "drive a minimal forwarder (-server) with raw datagrams instead of TURN")
	flag.Parse()
	if *forwarder != "" {
		if err := serveForwarder(*forwarder); err != nil {
			fmt.Fprintln(os.Stderr, "turnload:", err)
			os.Exit(1)
		}
		return
	}
	if *raw {
		if err := runRaw(*server, *allocs, *window, *size, *dur); err != nil {
			fmt.Fprintln(os.Stderr, "turnload:", err)
			os.Exit(1)
		}
		return
	}
	network := "udp"
	if *tcp {
		network = "tcp"
	}
	if err := run(network, *server, *user, *pass, *realm, *allocs, *window, *size, *dur, *hold, *pid); err != nil {
		fmt.Fprintln(os.Stderr, "turnload:", err)
		os.Exit(1)
	}
}
