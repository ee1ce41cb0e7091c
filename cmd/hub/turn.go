package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/guildhall/guildhall/hub/httpapi"
	"github.com/guildhall/guildhall/internal/daemon"
	"github.com/guildhall/guildhall/relay/turnrest"
)

// TURNConf is the turn section: TURN REST API credentials the hub hands
// its members (GET /v1/turn/credentials) for relays sharing a secret.
type TURNConf struct {
	// SecretFile holds the relays' shared secret: the relay's
	// auth.secrets_file itself will do (its first line, the newest secret,
	// is the one issued with). Never inline: a secret in the config or on
	// a command line ends up in backups, ps and shell history.
	SecretFile string `yaml:"secret_file"`
	// URLs are the relays' turn: and turns: URIs, given to clients.
	URLs []string `yaml:"urls"`
	// TTL is the credentials' lifetime; default 1h, 1m..24h.
	TTL time.Duration `yaml:"ttl"`
}

// resolve reads the secret and checks the section; without secret_file
// and urls the endpoint is off (ttl alone, as the example sets it, leaves
// it off). Errors name the key.
func (t TURNConf) resolve() (httpapi.TURN, error) {
	if t.SecretFile == "" && len(t.URLs) == 0 {
		return httpapi.TURN{}, nil
	}
	var errs []error
	out := httpapi.TURN{URLs: t.URLs, TTL: t.TTL}
	if t.SecretFile == "" {
		errs = append(errs, errors.New("turn.secret_file: required to issue TURN credentials (the relays' shared secret, in a file others cannot read)"))
	} else if lines, err := daemon.ReadSecretLines(t.SecretFile); err != nil {
		errs = append(errs, fmt.Errorf("turn.secret_file: %w", err))
	} else if len(lines) == 0 {
		errs = append(errs, fmt.Errorf("turn.secret_file: %s holds no secret", t.SecretFile))
	} else {
		out.Secret = lines[0]
	}
	if len(t.URLs) == 0 {
		errs = append(errs, errors.New("turn.urls: at least one turn: or turns: URI, e.g. turn:relay.example.org:3478?transport=udp"))
	}
	for i, u := range t.URLs {
		if err := turnrest.CheckURL(u); err != nil {
			errs = append(errs, fmt.Errorf("turn.urls[%d]: %w", i, err))
		}
	}
	if out.TTL == 0 {
		out.TTL = httpapi.DefaultTURNTTL
	}
	if out.TTL < httpapi.MinTURNTTL || out.TTL > httpapi.MaxTURNTTL {
		errs = append(errs, fmt.Errorf("turn.ttl: %v is outside %v..%v", t.TTL, httpapi.MinTURNTTL, httpapi.MaxTURNTTL))
	}
	if len(errs) > 0 {
		return httpapi.TURN{}, errors.Join(errs...)
	}
	return out, nil
}
