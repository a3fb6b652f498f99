package config

import (
	"errors"
	"fmt"
	"strings"
)

// RemediationConfig opts medic into changing the cluster (docs/security.md).
// Off, medic is read-only: a playbook naming a remediation action fails to
// load, and the chart creates no role that could write.
type RemediationConfig struct {
	Enabled bool `yaml:"enabled"`
	// Allowed lists the remediation actions playbooks may name (delete_pod,
	// rollout_restart, scale_workload, run_job, pod_bash_enricher,
	// node_bash_enricher, kubectl_command); the chart grants the verbs of
	// exactly these.
	Allowed []string `yaml:"allowed"`
	// Approvers are the Slack user IDs (U…, W…) and user-group IDs (S…)
	// whose press of an Approve button runs a proposed action.
	Approvers []string `yaml:"approvers"`
	// RequireApproval makes every remediation a proposal that runs only
	// when an approver presses its button, whatever the playbook says.
	// Off, a playbook may set require_approval: false on an action to run
	// it at once.
	RequireApproval bool `yaml:"require_approval"`
}

func defaultRemediation() RemediationConfig {
	return RemediationConfig{RequireApproval: true}
}

// validateRemediation checks the section's shape; whether each name in
// Allowed is a remediation action is the actions registry's to say
// (actions.ValidateRemediation, in the second step: Validator).
func (c *Config) validateRemediation() error {
	r := c.Remediation
	for i, a := range r.Approvers {
		if !slackPrincipal(a) {
			return fmt.Errorf("remediation.approvers[%d]: %q is not a Slack user ID (U…/W…) or user-group ID (S…)", i, a)
		}
	}
	if !r.Enabled {
		return nil
	}
	if len(r.Allowed) == 0 {
		return errors.New("remediation.allowed: list the remediation actions playbooks may use (remediation.enabled is true)")
	}
	if r.RequireApproval && len(r.Approvers) == 0 {
		return errors.New("remediation.approvers: required while remediation.require_approval is true (no one could approve)")
	}
	return nil
}

// slackPrincipal reports whether s looks like a Slack user or user-group ID.
func slackPrincipal(s string) bool {
	if len(s) < 3 || len(s) > 20 || !strings.ContainsRune("UWS", rune(s[0])) {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
