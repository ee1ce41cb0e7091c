package client

import "github.com/guildhall/guildhall/client/hubapi"

// HubError is a hub's refusal, as the client's operations return it: its
// stable code (wire/codes.go, policy's codes) and message.
type HubError = hubapi.Error

// IsCode reports whether err is a hub refusal with that code.
func IsCode(err error, code string) bool { return hubapi.IsCode(err, code) }
