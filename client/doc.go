// Package client is the Guildhall SDK: what the reference command-line
// tool, bots and other programs use to be members of servers. It holds a
// person's identity and this device's keys, verifies every server's state
// log itself with policy (trusting no hub for authority), encrypts messages
// with per-channel epoch keys sealed to each reader's device with HPKE, and
// keeps a local store (SQLite) of keys, verified state and decrypted history
// so it works offline.
//
// It speaks the hub's wire API through client/hubapi (the typed HTTP and
// WebSocket client) and never imports the hub. It never sends plaintext,
// keys or names to infrastructure: hubs see signed envelopes whose payload
// is ciphertext, and the key bundles they carry are sealed to devices.
package client
