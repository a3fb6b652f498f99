package interact

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

type manifest struct {
	OAuthConfig struct {
		Scopes struct {
			Bot []string `yaml:"bot"`
		} `yaml:"scopes"`
	} `yaml:"oauth_config"`
	Settings struct {
		Interactivity struct {
			IsEnabled  bool   `yaml:"is_enabled"`
			RequestURL string `yaml:"request_url"`
		} `yaml:"interactivity"`
		EventSubscriptions struct {
			RequestURL string   `yaml:"request_url"`
			BotEvents  []string `yaml:"bot_events"`
		} `yaml:"event_subscriptions"`
		SocketModeEnabled bool `yaml:"socket_mode_enabled"`
	} `yaml:"settings"`
}

// TestSlackManifestsMatchMedic keeps deploy/slack in step with what medic
// calls and serves: the scopes its API calls need, the endpoints it serves.
func TestSlackManifestsMatchMedic(t *testing.T) {
	for name, socket := range map[string]bool{"manifest.yaml": false, "manifest-socket-mode.yaml": true} {
		raw, err := os.ReadFile(filepath.Join("..", "deploy", "slack", name))
		if err != nil {
			t.Fatal(err)
		}
		var m manifest
		if err := yaml.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, scope := range []string{"chat:write", "files:write", "app_mentions:read", "usergroups:read"} {
			if !slices.Contains(m.OAuthConfig.Scopes.Bot, scope) {
				t.Errorf("%s lacks the %s scope", name, scope)
			}
		}
		s := m.Settings
		if !s.Interactivity.IsEnabled || s.SocketModeEnabled != socket || !slices.Contains(s.EventSubscriptions.BotEvents, "app_mention") {
			t.Errorf("%s settings %+v", name, s)
		}
		if socket {
			continue
		}
		for want, raw := range map[string]string{"/slack/interactions": s.Interactivity.RequestURL, "/slack/events": s.EventSubscriptions.RequestURL} {
			if u, err := url.Parse(raw); err != nil || u.Path != want || u.Scheme != "https" {
				t.Errorf("%s: request URL %q, want https://…%s", name, raw, want)
			}
		}
	}
}
