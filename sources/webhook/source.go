// Package webhook is medic's generic JSON webhook source: operators declare
// sources (webhook_sources in the configuration), each with its own
// credentials and a mapping of CEL expressions from the body to the event's
// fields, or a preset for a known tool (Argo CD notifications, Flux's
// notification-controller, Kubecost alerts). POST /api/webhooks/<name>
// turns the body into one event through the same intake as the
// Alertmanager webhook: authenticated, bounded, stored before 200, 503 with
// Retry-After when the bus cannot store. Playbooks select the events with
// `on_webhook: {source: <name>}`.
package webhook

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event/webhookevent"
	"github.com/medichq/medic/sources/httpauth"
)

// SourceConfig is one entry of webhook_sources and AuthConfig its
// credentials; package config owns both (the plain fields and their secret
// files). What only this package can judge, the preset and the CEL
// mapping, ValidateSource checks.
type (
	SourceConfig = config.WebhookSource
	AuthConfig   = config.WebhookAuth
)

// httpAuth is the request credential check (bearer or basic).
func httpAuth(a AuthConfig) httpauth.Auth {
	return httpauth.Auth{BearerToken: a.BearerToken, Username: a.Username, Password: a.Password}
}

// ValidateSource checks the source and compiles its mapping; errors name
// the field under the source ("auth.hmac_header", "mapping.title: …"). The
// secret files must have been read into the secrets already.
func ValidateSource(c *SourceConfig) error {
	if !webhookevent.ValidName(c.Name) {
		return fmt.Errorf("name: %q must be 1–63 lower-case letters, digits, '-' or '_' (it is part of the URL)", c.Name)
	}
	if c.Preset != "" {
		if _, ok := Presets[c.Preset]; !ok {
			return fmt.Errorf("preset: %q is not one of %s", c.Preset, strings.Join(slices.Sorted(maps.Keys(Presets)), ", "))
		}
	}
	if c.Preset == "" && len(c.Mapping) == 0 {
		return errors.New("mapping: set a mapping or a preset")
	}
	a := c.Auth
	switch {
	case a.BearerToken == "" && a.Username == "" && a.Password == "" && a.HMACSecret == "":
		return errors.New("auth: set bearer_token(_file), username and password(_file), or hmac_secret(_file); a webhook source without credentials would let anyone inject findings")
	case (a.Username == "") != (a.Password == ""):
		return errors.New("auth.username and auth.password: set both or neither")
	case a.HMACHeader != "" && a.HMACSecret == "":
		return errors.New("auth.hmac_header: set auth.hmac_secret too")
	}
	if _, err := compileSource(c); err != nil {
		return err
	}
	return nil
}

// expressions returns the source's mapping: the preset's, overridden field
// by field by Mapping.
func expressions(c *SourceConfig) map[string]string {
	out := map[string]string{}
	if p, ok := Presets[c.Preset]; ok {
		maps.Copy(out, p.Mapping)
	}
	maps.Copy(out, c.Mapping)
	return out
}

// compileSource compiles the source's mapping.
func compileSource(c *SourceConfig) (*Mapping, error) { return Compile(expressions(c)) }

// hmacCheck is the body-signature check, with the preset's header by
// default.
func hmacCheck(c *SourceConfig) httpauth.HMAC {
	h := c.Auth.HMACHeader
	if h == "" {
		h = Presets[c.Preset].HMACHeader
	}
	return httpauth.HMAC{Secret: c.Auth.HMACSecret, Header: h}
}
