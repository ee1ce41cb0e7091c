// Package faults holds the fault tests: hub processes killed, their
// database restarted or cut off, their bucket stopped, while clients keep
// posting; every test checks that nothing acknowledged is lost. It has no
// code of its own.
package faults
