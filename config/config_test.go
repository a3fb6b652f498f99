package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "medic.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadCase loads file (YAML; none when empty) with env and checks the
// error: none when wantErr is empty, else one containing it. ok says
// whether cfg is the loaded configuration to check further.
func loadCase(t *testing.T, file string, env []string, wantErr string) (cfg Config, ok bool) {
	t.Helper()
	path := ""
	if file != "" {
		path = writeConfig(t, file)
	}
	cfg, err := Load(path, env)
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("%q %v: %v", file, env, err)
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
		t.Errorf("%q %v: error %v, want %q", file, env, err, wantErr)
	}
	return cfg, wantErr == "" && err == nil
}

func TestDefaultsNeedNoFile(t *testing.T) {
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bus.StoreDir != filepath.Join("data", "jetstream") || cfg.Bus.URL != "" {
		t.Errorf("embedded bus not defaulted: %+v", cfg.Bus)
	}
	if len(cfg.Sinks) != 2 || cfg.Sinks[0].Type != "stdout" || cfg.Sinks[1].Type != "file" {
		t.Errorf("default sinks: %+v", cfg.Sinks)
	}
	if cfg.Webhook.MaxBodyBytes != 4<<20 {
		t.Errorf("webhook limit %d", cfg.Webhook.MaxBodyBytes)
	}
}

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "deploy", "medic.example.yaml"), nil)
	if err != nil {
		t.Fatalf("deploy/medic.example.yaml does not load: %v", err)
	}
	if len(cfg.Sinks) != 3 || cfg.Sinks[2].Name == "" {
		t.Errorf("example sinks: %+v", cfg.Sinks)
	}
	// The example documents the defaults; keep them honest.
	def := Default()
	if cfg.Bus.DedupWindow != def.Bus.DedupWindow || cfg.Bus.FindingsDedupWindow != def.Bus.FindingsDedupWindow || cfg.Bus.MaxDeliver != def.Bus.MaxDeliver ||
		cfg.HTTP.Addr != def.HTTP.Addr || cfg.Playbooks.ReloadInterval != def.Playbooks.ReloadInterval ||
		cfg.Engine.Workers != def.Engine.Workers || len(cfg.Bus.Backoff) != len(def.Bus.Backoff) ||
		cfg.HTTP != def.HTTP || cfg.Webhook.BodyTimeout != def.Webhook.BodyTimeout ||
		!slices.Equal(cfg.Redaction.EnvAllow, def.Redaction.EnvAllow) {
		t.Errorf("example disagrees with Default():\nexample %+v\ndefault %+v", cfg, def)
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	p := writeConfig(t, "http: {addr: ':1111'}\ncluster_name: from-file\n")
	cfg, err := Load(p, []string{
		"MEDIC_HTTP_ADDR=:2222",
		"MEDIC_BUS_DEDUP_WINDOW=90s",
		"MEDIC_BUS_BACKOFF=1s, 2s",
		"MEDIC_PLAYBOOKS_DIRS=a,b",
		"MEDIC_PLAYBOOKS_BUILTIN=false",
		"MEDIC_WEBHOOK_MAX_BODY_BYTES=2048",
		"MEDIC_SERVICE_HOST=10.0.0.1", // injected by Kubernetes for a Service named medic
		"PATH=/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != ":2222" || cfg.ClusterName != "from-file" {
		t.Errorf("addr %q cluster %q", cfg.HTTP.Addr, cfg.ClusterName)
	}
	if cfg.Bus.DedupWindow != 90*time.Second || len(cfg.Bus.Backoff) != 2 || cfg.Bus.Backoff[1] != 2*time.Second {
		t.Errorf("bus %+v", cfg.Bus)
	}
	if strings.Join(cfg.Playbooks.Dirs, ",") != "a,b" || cfg.Playbooks.Builtin || cfg.Webhook.MaxBodyBytes != 2048 {
		t.Errorf("playbooks %+v webhook %+v", cfg.Playbooks, cfg.Webhook)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "MEDIC_SERVICE_HOST") {
		t.Errorf("warnings %v", cfg.Warnings)
	}
}

func TestErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		env     []string
		wantErr string
	}{
		{"unknown key with line", "http:\n  adr: x\n", nil, "line 2: field adr not found"},
		{"bad level", "log: {level: loud}\n", nil, `log.level: "loud"`},
		{"zero workers", "engine: {workers: 0}\n", nil, "engine.workers"},
		{"negative in-flight bound", "webhook: {max_in_flight: -1}\n", nil, "webhook.max_in_flight"},
		{"negative intake yield", "engine: {intake_yield: -1ms}\n", nil, "engine.intake_yield"},
		{"intake yield over a second", "", []string{"MEDIC_ENGINE_INTAKE_YIELD=2s"}, "engine.intake_yield"},
		{"half basic auth", "webhook: {username: u}\n", nil, "webhook.username and webhook.password"},
		{"token and basic auth", "webhook: {bearer_token: t, username: u, password: p}\n", nil, "webhook.bearer_token"},
		{"tiny body limit", "webhook: {max_body_bytes: 10}\n", nil, "webhook.max_body_bytes"},
		{"negative alerts cap", "webhook: {max_alerts_per_request: -1}\n", nil, "webhook.max_alerts_per_request"},
		{"negative decoded cap", "webhook: {max_decoded_bytes: -1}\n", nil, "webhook.max_decoded_bytes"},
		{"negative decoded budget", "webhook: {max_in_flight_decoded_bytes: -1}\n", nil, "webhook.max_in_flight_decoded_bytes"},
		{"request cap over the budget", "webhook: {max_decoded_bytes: 2000, max_in_flight_decoded_bytes: 1000}\n", nil, "webhook.max_decoded_bytes"},
		{"bad duration from env", "", []string{"MEDIC_BUS_ACK_WAIT=soon"}, "MEDIC_BUS_ACK_WAIT"},
		{"bad bool from env", "", []string{"MEDIC_PLAYBOOKS_BUILTIN=perhaps"}, "MEDIC_PLAYBOOKS_BUILTIN"},
		{"short ack wait", "bus: {ack_wait: 10ms}\n", nil, "bus.ack_wait"},
		{"sink not a mapping", "sinks: [stdout]\n", nil, "a sink must be a mapping with name and type"},
		{"duplicate sink", "sinks: [{name: a, type: stdout}, {name: a, type: stdout}]\n", nil, `sink "a" is configured twice`},
		{"missing token file", "webhook: {bearer_token_file: /nonexistent/token}\n", nil, "webhook.bearer_token_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeConfig(t, tt.file)
			}
			_, err := Load(path, tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestSecretFilesAreRead(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("abc123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(writeConfig(t, "webhook: {bearer_token_file: "+tok+"}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Webhook.BearerToken != "abc123" {
		t.Fatalf("token %q", cfg.Webhook.BearerToken)
	}
}
