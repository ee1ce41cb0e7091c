package httpapi

import (
	"testing"

	"github.com/guildhall/guildhall/hub"
	"github.com/guildhall/guildhall/hub/hubtest"
)

// fixture is the service's test fixture (hubtest), with the helpers these
// tests add to it.
type fixture struct{ *hubtest.Fixture }

func newFixtureOn(t *testing.T, profile string, configure ...func(*hub.Config)) *fixture {
	return &fixture{hubtest.New(t, profile, configure...)}
}

var (
	key         = hubtest.Key
	t0          = hubtest.T0
	eachProfile = hubtest.EachProfile
	pgURL       = hubtest.PostgresURL
)
