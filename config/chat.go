package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// SlackConfig is medic's own Slack app: the bot token the Slack sinks and
// the interaction handler post with, and how Slack reaches medic back
// (POST /slack/interactions and /slack/events signed with the signing
// secret, or Socket Mode with an app-level token for clusters without
// ingress). Tokens and the secret are never logged nor put in a message.
type SlackConfig struct {
	// BotToken (xoxb-…) posts messages, updates them and uploads files.
	BotToken     string `yaml:"bot_token"`
	BotTokenFile string `yaml:"bot_token_file"`
	// SigningSecret verifies the requests Slack sends to
	// /slack/interactions and /slack/events; without it (and without
	// Socket Mode) those endpoints answer 404.
	SigningSecret     string `yaml:"signing_secret"`
	SigningSecretFile string `yaml:"signing_secret_file"`
	// SocketMode receives interactions and mentions over a websocket medic
	// opens to Slack with AppToken (xapp-…), so no ingress is needed.
	SocketMode   bool   `yaml:"socket_mode"`
	AppToken     string `yaml:"app_token"`
	AppTokenFile string `yaml:"app_token_file"`
	// APIURL is Slack's Web API base URL; empty means https://slack.com/api/
	// (an air-gapped forwarder or a test server otherwise). A slack sink's
	// api_url overrides it for that sink.
	APIURL string `yaml:"api_url"`
}

// AlertmanagerConfig is the Alertmanager the Silence buttons create
// silences in (its API v2). Credentials go only where the operator points
// them: URL, or an alert's externalURL that AllowedURLs lists. Anyone who
// can post an alert chooses its externalURL, so without either the
// buttons cannot act (they say so in the thread) rather than send the
// bearer token to an address the alert picked.
type AlertmanagerConfig struct {
	URL string `yaml:"url"`
	// AllowedURLs are Alertmanagers an alert's externalURL may name when
	// URL is empty (several Alertmanagers sending to one medic): the
	// externalURL is used when its scheme and host equal an entry's and
	// its path lies under the entry's path.
	AllowedURLs []string `yaml:"allowed_urls"`
	// BearerTokenFile, when set, is sent as "Authorization: Bearer …".
	BearerTokenFile string        `yaml:"bearer_token_file"`
	Timeout         time.Duration `yaml:"timeout"`
}

// FindingPageConfig is medic's own page for a finding (GET /findings/{id}):
// Teams buttons and "Open in medic" links point at it. Links are signed
// with HMAC-SHA256 and expire.
type FindingPageConfig struct {
	// KeyFile holds the signing key (at least 32 bytes). Empty: medic
	// generates one at first start and keeps it in the JetStream KV bucket
	// medic_interact, so every replica and restart signs alike.
	KeyFile string `yaml:"key_file"`
	// TTL is how long a link stays valid.
	TTL time.Duration `yaml:"ttl"`
	// Retention is how long findings are kept (KV bucket medic_findings)
	// for the buttons and the page.
	Retention time.Duration `yaml:"retention"`
}

func defaultSlack() SlackConfig { return SlackConfig{} }

func defaultAlertmanager() AlertmanagerConfig { return AlertmanagerConfig{Timeout: 10 * time.Second} }

func defaultFindingPage() FindingPageConfig {
	return FindingPageConfig{TTL: 7 * 24 * time.Hour, Retention: 7 * 24 * time.Hour}
}

func readChatSecrets(cfg *Config, read func(field, path string, dst *string) error) error {
	if err := read("slack.bot_token_file", cfg.Slack.BotTokenFile, &cfg.Slack.BotToken); err != nil {
		return err
	}
	if err := read("slack.signing_secret_file", cfg.Slack.SigningSecretFile, &cfg.Slack.SigningSecret); err != nil {
		return err
	}
	return read("slack.app_token_file", cfg.Slack.AppTokenFile, &cfg.Slack.AppToken)
}

func httpURL(field, s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: %q is not an http(s) URL", field, s)
	}
	return nil
}

func (c *Config) validateChat() error {
	s := &c.Slack
	switch {
	case s.SocketMode && s.AppToken == "":
		return errors.New("slack.app_token: required with slack.socket_mode (an app-level token, xapp-…, with connections:write)")
	case s.SocketMode && s.BotToken == "":
		return errors.New("slack.bot_token: required with slack.socket_mode")
	case s.AppToken != "" && !strings.HasPrefix(s.AppToken, "xapp-"):
		return errors.New("slack.app_token: an app-level token starts with xapp-")
	case s.BotToken != "" && strings.HasPrefix(s.BotToken, "xapp-"):
		return errors.New("slack.bot_token: this is an app-level token (xapp-…); the bot token starts with xoxb-")
	}
	if err := httpURL("slack.api_url", s.APIURL); err != nil {
		return err
	}
	if err := httpURL("alertmanager.url", c.Alertmanager.URL); err != nil {
		return err
	}
	for i, u := range c.Alertmanager.AllowedURLs {
		if err := httpURL(fmt.Sprintf("alertmanager.allowed_urls[%d]", i), u); err != nil {
			return err
		}
	}
	if err := httpURL("public_url", c.PublicURL); err != nil {
		return err
	}
	switch {
	case c.Alertmanager.Timeout <= 0:
		return errors.New("alertmanager.timeout: must be positive")
	case c.FindingPage.TTL < time.Minute:
		return errors.New("finding_page.ttl: must be at least 1m")
	case c.FindingPage.Retention < time.Hour:
		return errors.New("finding_page.retention: must be at least 1h")
	}
	return nil
}
