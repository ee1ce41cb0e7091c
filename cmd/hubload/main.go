// Command hubload is the hub's load generator: it drives a running hub
// through its public API the way clients do and reports throughput,
// latency and the hub's memory. It creates its own community on the hub
// (which must admit it: a home node does) and speaks only the wire API.
//
//	hubload -hub http://127.0.0.1:7420 ingest -n 200000 -size 1024
//	hubload -hub http://127.0.0.1:7420 -pid 1234 fanout -subs 10000 -rate 100 -duration 30s
//	hubload -hub http://127.0.0.1:7420 sync -n 100000
//
// The hub must run with rate limits raised for one sender and one source
// (GUILDHALL_HUB_POST_RATE=-1 GUILDHALL_HUB_SOURCE_RATE=-1): the load comes
// from one identity on one address. deploy/bench-hub.sh runs every scenario
// on both storage profiles.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fl := flag.NewFlagSet("hubload", flag.ExitOnError)
	hubURL := fl.String("hub", "http://127.0.0.1:7420", "the hub's public API")
	pid := fl.Int("pid", 0, "the hub's process ID, to report its memory (optional)")
	cpuprofile := fl.String("cpuprofile", "", "write the load generator's CPU profile here")
	fl.Parse(os.Args[1:])
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "hubload:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if fl.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: hubload [-hub URL] [-pid PID] ingest|fanout|sync|soak [flags]")
		os.Exit(2)
	}
	l := &loader{hub: *hubURL, pid: *pid}
	var err error
	args := fl.Args()[1:]
	switch fl.Arg(0) {
	case "ingest":
		err = l.ingest(ctx, args)
	case "fanout":
		err = l.fanout(ctx, args)
	case "sync":
		err = l.sync(ctx, args)
	case "soak":
		err = l.soak(ctx, args)
	default:
		err = fmt.Errorf("unknown scenario %q", fl.Arg(0))
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "hubload:", err)
		os.Exit(1)
	}
}
