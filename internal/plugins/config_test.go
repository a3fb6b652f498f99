package plugins_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/plugins"
	"github.com/medichq/medic/internal/testkit"
)

// What config leaves raw, the plugins' registries judge: Load with
// ValidateConfig fails where Load without it passes, naming the field.
func TestValidateConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, wantErr string
	}{
		{"valid", "sinks: [{name: a, type: stdout}]\nwebhook_sources:\n  - {name: argocd, preset: argocd, auth: {bearer_token: t}}\n", ""},
		{"unknown sink type", "sinks: [{name: a, type: pager}]\n", `sinks[0]: sink "a": unknown sink type "pager"`},
		{"unknown sink param", "sinks:\n  - name: a\n    type: file\n    pth: x\n", `line 4: unknown parameter "pth" (did you mean "path"?)`},
		{"bad sink name", "sinks: [{name: A, type: stdout}]\n", `sink name "A" must be 1-64 lowercase letters`},
		{"bad sink scope", "sinks: [{name: a, type: stdout, scope: [x]}]\n", "sinks[0]: line 1"},
		{"slack sink without channel", "sinks: [{name: s, type: slack}]\n", "channel: required"},
		{"teams sink without URL", "sinks: [{name: t, type: teams}]\n", "webhook_url, webhook_url_file or webhook_url_env"},
		{"webhook sink without URL", "sinks: [{name: w, type: webhook}]\n", "url: required"},
		{"unknown remediation", "remediation: {allowed: [delete_pods]}\n", `remediation.allowed[0]: "delete_pods" is not a remediation action`},
		{"webhook source without credentials", "webhook_sources:\n  - {name: argocd, preset: argocd}\n", "webhook_sources[0].auth: set"},
		{"webhook source CEL error", "webhook_sources:\n  - {name: ci, mapping: {title: 'body.msg +'}, auth: {bearer_token: t}}\n", "webhook_sources[0].mapping.title (body.msg +)"},
		{"webhook source missing field", "webhook_sources:\n  - {name: ci, mapping: {titel: body.msg}, auth: {bearer_token: t}}\n", "webhook_sources[0].mapping.title: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "medic.yaml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := config.Load(path, nil); err != nil {
				t.Fatalf("config's own step fails already: %v", err)
			}
			_, err := config.Load(path, nil, plugins.Builtin().ValidateConfig)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// Check lists config's own problems and every plugin's at once, each at
// its place in the file.
func TestCheckListsPluginProblems(t *testing.T) {
	t.Parallel()
	probs := config.Check(filepath.Join("testdata", "broken.yaml"), nil, plugins.Builtin().ValidateConfig)
	var out strings.Builder
	for _, p := range probs {
		out.WriteString(p.String() + "\n")
	}
	testkit.Golden(t, filepath.Join("testdata", "broken.golden"), []byte(out.String()))
	if len(probs) != 4 {
		t.Errorf("%d problems, want 4 (log, sink, remediation, webhook source)", len(probs))
	}
}

// The example configuration's sinks pass the registry, with their routing
// keys as written.
func TestExampleSinks(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(filepath.Join("..", "..", "deploy", "medic.example.yaml"), nil, plugins.Builtin().ValidateConfig)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := plugins.Builtin().Sinks.FromConfigs(cfg.Sinks)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 3 || !specs[0].Default || specs[2].Default {
		t.Errorf("example sinks: %+v", specs)
	}
}
