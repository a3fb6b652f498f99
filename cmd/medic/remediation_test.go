package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `medic playbooks validate` applies the configuration's remediation
// policy: without one (read-only) a playbook naming delete_pod fails with
// how to enable it; with remediation enabled and delete_pod allowed it loads.
func TestValidateRemediationFollowsTheConfig(t *testing.T) {
	dir := t.TempDir()
	pb := filepath.Join(dir, "restart.yaml")
	if err := os.WriteFile(pb, []byte(`- name: delete-stuck-pod
  triggers: [{on_prometheus_alert: {alert_name: KubePodCrashLooping}}]
  actions: [{delete_pod: {}}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "medic.yaml")
	if err := os.WriteFile(cfg, []byte("remediation: {enabled: true, allowed: [delete_pod], approvers: [U024BE7LH]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := medic(t, "playbooks", "validate", "--no-builtin", pb)
	if code != 1 || !strings.Contains(out, "restart.yaml:3: playbook \"delete-stuck-pod\": delete_pod changes the cluster and remediation is disabled (medic is read-only by default): set remediation.enabled: true and list delete_pod in remediation.allowed") {
		t.Fatalf("read-only: exit %d\n%s", code, out)
	}
	if out, code := medic(t, "playbooks", "validate", "--no-builtin", "-c", cfg, pb); code != 0 {
		t.Fatalf("remediation enabled: exit %d\n%s", code, out)
	}
}
