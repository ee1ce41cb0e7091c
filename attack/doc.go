// Package attack holds the hub's attack suite: each test runs an attack a
// stranger, a member or a peer could mount against a real hub process on
// loopback, states the bound it checks, and shows the hub withstood it. It
// has no code of its own beyond the tests; it never sends traffic anywhere
// but the loopback hubs it starts.
package attack
