package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWebhookSourcesConfig(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file, wantErr string
	}{
		{"webhook_sources:\n  - {name: argocd, preset: argocd, auth: {bearer_token_file: " + secret + "}}\n", ""},
		{"webhook_sources:\n  - {name: flux, preset: flux, auth: {hmac_secret: s}}\n  - {name: ci, mapping: {title: body.msg, severity: body.level}, auth: {username: u, password: p}}\n", ""},
		{"webhook_sources:\n  - {name: a, preset: flux, auth: {hmac_secret: s}}\n  - {name: a, preset: argocd, auth: {bearer_token: t}}\n", `webhook_sources[1].name: "a" is used twice`},
		{"webhook_sources:\n  - {name: a, preset: flux, auth: {hmac_secret_file: /nonexistent/x}}\n", "webhook_sources[0].auth.hmac_secret_file"},
		{"webhook_sources:\n  - {name: a, preset: flux, auth: {hmac_secret: s, hmac_heder: X}}\n", "field hmac_heder not found"},
	}
	for _, tt := range tests {
		cfg, err := Load(writeConfig(t, tt.file), nil)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tt.file, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%q: error %v, want %q", tt.file, err, tt.wantErr)
		case tt.wantErr == "" && cfg.WebhookSources[0].Name == "argocd" && cfg.WebhookSources[0].Auth.BearerToken != "s3cret":
			t.Errorf("bearer_token_file was not read: %+v", cfg.WebhookSources[0].Auth)
		}
	}
}
