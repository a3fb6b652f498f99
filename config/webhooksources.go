package config

import "fmt"

// WebhookSource is one generic JSON webhook source (webhook_sources):
// POST /api/webhooks/<name>, its credentials and its CEL mapping or preset.
// Config reads its secret files and keeps names unique; the preset and the
// mapping are judged by sources/webhook (webhook.ValidateSource), which takes
// it as webhook.SourceConfig.
type WebhookSource struct {
	// Name is the URL's last segment (/api/webhooks/<name>) and what
	// on_webhook's source selects.
	Name string `yaml:"name"`
	// Preset is a ready mapping (webhook.Presets); Mapping's fields override it.
	Preset string `yaml:"preset"`
	// Mapping maps event fields (webhook.Fields) to CEL expressions over body.
	Mapping map[string]string `yaml:"mapping"`
	Auth    WebhookAuth       `yaml:"auth"`
}

// WebhookAuth are a source's credentials: a bearer token or basic auth
// (either is enough when both are set, as for /api/alerts), and an HMAC
// signature of the body, which, when set, is required as well. One at least
// is required: a webhook source can inject findings.
type WebhookAuth struct {
	BearerToken     string `yaml:"bearer_token"`
	BearerTokenFile string `yaml:"bearer_token_file"`
	Username        string `yaml:"username"`
	Password        string `yaml:"password"`
	PasswordFile    string `yaml:"password_file"`
	// HMACSecret signs the body; the signature is read from HMACHeader
	// (default: the preset's, else X-Hub-Signature-256) as sha256=<hex>.
	HMACSecret     string `yaml:"hmac_secret"`
	HMACSecretFile string `yaml:"hmac_secret_file"`
	HMACHeader     string `yaml:"hmac_header"`
}

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

// validateWebhookSources checks that names are unique; the rest of each
// source (its preset, credentials and CEL mapping) is sources/webhook's to
// judge, in the second step (Validator).
func (c *Config) validateWebhookSources() error {
	seen := map[string]bool{}
	for i := range c.WebhookSources {
		s := &c.WebhookSources[i]
		if seen[s.Name] {
			return fmt.Errorf("webhook_sources[%d].name: %q is used twice", i, s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}
