package config

import (
	"fmt"

	"github.com/medichq/medic/sources/webhook"
)

// WebhookSource is one generic JSON webhook source (webhook_sources):
// POST /api/webhooks/<name>, its credentials and its CEL mapping or preset.
// Defaults (the preset's signature header) live in sources/webhook.
type WebhookSource = webhook.SourceConfig

// readWebhookSourceSecrets reads each source's secret files into its
// secrets; a file wins over the inline value, as elsewhere.
func readWebhookSourceSecrets(cfg *Config, read func(field, path string, dst *string) error) error {
	for i := range cfg.WebhookSources {
		a := &cfg.WebhookSources[i].Auth
		prefix := fmt.Sprintf("webhook_sources[%d].auth.", i)
		for _, f := range []struct {
			name string
			path string
			dst  *string
		}{
			{"bearer_token_file", a.BearerTokenFile, &a.BearerToken},
			{"password_file", a.PasswordFile, &a.Password},
			{"hmac_secret_file", a.HMACSecretFile, &a.HMACSecret},
		} {
			if err := read(prefix+f.name, f.path, f.dst); err != nil {
				return err
			}
		}
	}
	return nil
}

// validateWebhookSources checks every source (its mapping compiled) and
// that names are unique; errors name the source's field.
func (c *Config) validateWebhookSources() error {
	seen := map[string]bool{}
	for i := range c.WebhookSources {
		s := &c.WebhookSources[i]
		if err := s.Validate(); err != nil {
			return fmt.Errorf("webhook_sources[%d].%w", i, err)
		}
		if seen[s.Name] {
			return fmt.Errorf("webhook_sources[%d].name: %q is used twice", i, s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}
