// Package daemon is the plumbing the Guildhall binaries (cmd/hub,
// cmd/relay) share, so that each main is only wiring: strict YAML
// configuration files, secret files that must not be readable by others,
// a logger whose level is checked, the admin listener's metrics, health and
// profiling routes, and the -version and -healthcheck flags.
//
// It is a library like any other: it never reads the environment or global
// state, keeps no globals, has no init side effects, and logs nothing of
// its own. It must never know a binary's configuration keys or domain:
// callers pass paths, values and a [prometheus.Gatherer] and get back
// values and errors.
package daemon
