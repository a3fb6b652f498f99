package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestExampleDocumentsChatDefaults(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "deploy", "medic.example.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	def := Default()
	if cfg.Slack != def.Slack || !reflect.DeepEqual(cfg.Alertmanager, def.Alertmanager) || cfg.FindingPage != def.FindingPage || cfg.PublicURL != def.PublicURL {
		t.Errorf("example disagrees with Default():\nslack %+v / %+v\nalertmanager %+v / %+v\nfinding_page %+v / %+v",
			cfg.Slack, def.Slack, cfg.Alertmanager, def.Alertmanager, cfg.FindingPage, def.FindingPage)
	}
}

func TestChatSettings(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bot := write("bot", "xoxb-123\n")
	secret := write("secret", "s3cret\n")
	app := write("app", "xapp-1-abc\n")
	cfg, err := Load(writeConfig(t, "slack: {bot_token_file: "+bot+", signing_secret_file: "+secret+", app_token_file: "+app+", socket_mode: true}\npublic_url: https://medic.example\n"),
		[]string{"MEDIC_ALERTMANAGER_URL=http://am:9093"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Slack.BotToken != "xoxb-123" || cfg.Slack.SigningSecret != "s3cret" || cfg.Slack.AppToken != "xapp-1-abc" || cfg.Alertmanager.URL != "http://am:9093" {
		t.Errorf("slack %+v alertmanager %+v", cfg.Slack, cfg.Alertmanager)
	}
	for file, want := range map[string]string{
		"slack: {socket_mode: true, bot_token: xoxb-1}\n":     "slack.app_token: required with slack.socket_mode",
		"slack: {app_token: xoxb-1}\n":                        "slack.app_token: an app-level token starts with xapp-",
		"slack: {bot_token: xapp-1}\n":                        "slack.bot_token: this is an app-level token",
		"public_url: medic.example\n":                         "public_url",
		"alertmanager: {url: 'ftp://am'}\n":                   "alertmanager.url",
		"finding_page: {ttl: 1s}\n":                           "finding_page.ttl",
		"slack: {bot_token_file: /nonexistent/medic-token}\n": "slack.bot_token_file",
	} {
		_, err := Load(writeConfig(t, file), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", file, err, want)
		}
	}
}
