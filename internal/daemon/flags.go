package daemon

import (
	"flag"
	"fmt"
	"io"

	"github.com/guildhall/guildhall/internal/healthcheck"
)

// Common is the flags every binary has: -version and -healthcheck.
type Common struct {
	version bool
	probe   string
}

// AddCommon declares -version and -healthcheck on fl.
func AddCommon(fl *flag.FlagSet) *Common {
	c := &Common{}
	fl.BoolVar(&c.version, "version", false, "print the version and exit")
	fl.StringVar(&c.probe, "healthcheck", "", "probe this URL (2xx: exit 0) and exit; the container HEALTHCHECK")
	return c
}

// Handle acts on the flags after parsing. done reports that the binary has
// nothing more to do: it probed a URL (err says whether the probe passed)
// or printed "name version" to stdout.
func (c *Common) Handle(name, version string, stdout io.Writer) (done bool, err error) {
	if c.probe != "" {
		return true, healthcheck.Probe(c.probe)
	}
	if c.version {
		_, err := fmt.Fprintln(stdout, name, version)
		return true, err
	}
	return false, nil
}
