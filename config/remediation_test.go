package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestRemediationConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file    string
		wantErr string
	}{
		{"", ""},
		{"remediation: {enabled: true, allowed: [delete_pod, rollout_restart], approvers: [U024BE7LH, S0614TZR7]}\n", ""},
		{"remediation: {enabled: true, allowed: [kubectl_command], require_approval: false}\n", ""},
		{"remediation: {enabled: true, approvers: [U024BE7LH]}\n", "remediation.allowed: list the remediation actions"},
		{"remediation: {enabled: true, allowed: [delete_pod]}\n", "remediation.approvers: required while remediation.require_approval is true"},
		{"remediation: {approvers: [alice]}\n", `remediation.approvers[0]: "alice" is not a Slack user ID`},
	}
	for _, tt := range tests {
		path := ""
		if tt.file != "" {
			path = writeConfig(t, tt.file)
		}
		_, err := Load(path, nil)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tt.file, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%q: error %v, want %q", tt.file, err, tt.wantErr)
		}
	}
	// Read-only by default, and the example says so.
	def := Default().Remediation
	if def.Enabled || !def.RequireApproval || len(def.Allowed) > 0 {
		t.Errorf("default remediation %+v", def)
	}
	cfg, err := Load(filepath.Join("..", "deploy", "medic.example.yaml"), nil)
	if err != nil || cfg.Remediation.Enabled != def.Enabled || cfg.Remediation.RequireApproval != def.RequireApproval {
		t.Errorf("example remediation block %+v (%v), default %+v", cfg.Remediation, err, def)
	}
}
