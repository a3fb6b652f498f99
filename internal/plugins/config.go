package plugins

import (
	"fmt"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/config"
	"github.com/medichq/medic/sources/webhook"
)

// ValidateConfig is the second step of configuration, a config.Validator.
// Package config decodes medic.yaml and judges its own shape (types,
// ranges, field names) but keeps raw what belongs to a plugin: a sink
// type's parameters, a webhook source's preset and CEL mapping, the names
// of the remediation actions. ValidateConfig hands each to the registry
// that owns it, so that config imports none of them (issue 15); it judges
// against the plugins of s. As a method value (plugins.Builtin().ValidateConfig)
// it is a config.Validator.
//
// It returns the first error, naming its field as config's own errors do
// ("sinks[1]: …", "webhook_sources[0].mapping.title: …"), with the node's
// line where the registry has one, so that `medic config check` places it
// and, resetting that field, goes on to the next.
func (s *Set) ValidateConfig(cfg *config.Config) error {
	if _, err := s.Sinks.FromConfigs(cfg.Sinks); err != nil {
		return err
	}
	if err := actions.ValidateRemediation(cfg.Remediation); err != nil {
		return err
	}
	for i := range cfg.WebhookSources {
		if err := webhook.ValidateSource(&cfg.WebhookSources[i]); err != nil {
			return fmt.Errorf("webhook_sources[%d].%w", i, err)
		}
	}
	return nil
}

var _ config.Validator = (&Set{}).ValidateConfig
