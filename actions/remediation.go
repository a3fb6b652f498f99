package actions

import (
	"fmt"
	"slices"
	"strings"

	"github.com/medichq/medic/config"
)

// RemediationActions are the actions that change the cluster or run
// commands in it (package actions/remediate). They load only when the
// operator's configuration enables remediation and lists them; medic is
// read-only otherwise.
var RemediationActions = []string{
	"delete_pod", "rollout_restart", "scale_workload", "run_job",
	"pod_bash_enricher", "node_bash_enricher", "kubectl_command",
}

// IsRemediation reports whether name is one of RemediationActions.
func IsRemediation(name string) bool { return slices.Contains(RemediationActions, name) }

// Remediation is the operator's remediation policy (the configuration's
// remediation section), as the loader and the actions see it. The zero
// value is read-only: no remediation action loads.
type Remediation struct {
	Enabled bool
	// Allowed lists the remediation actions playbooks may name.
	Allowed []string
	// RequireApproval makes every remediation wait for a person, whatever
	// the playbook says.
	RequireApproval bool
}

// PolicyFrom is the configuration's remediation section as the playbook
// loader and the actions see it.
func PolicyFrom(c config.RemediationConfig) Remediation {
	return Remediation{Enabled: c.Enabled, Allowed: slices.Clone(c.Allowed), RequireApproval: c.RequireApproval}
}

// ValidateRemediation checks what config cannot: that every name in
// remediation.allowed is one of RemediationActions. Its error names the
// field as config's own do, so `medic config check` places it.
func ValidateRemediation(c config.RemediationConfig) error {
	for i, name := range c.Allowed {
		if !IsRemediation(name) {
			return fmt.Errorf("remediation.allowed[%d]: %q is not a remediation action (one of %s)",
				i, name, strings.Join(RemediationActions, ", "))
		}
	}
	return nil
}

// Allows reports whether the policy lets action name load and run.
func (r Remediation) Allows(name string) bool {
	return r.Enabled && slices.Contains(r.Allowed, name)
}

// Why explains why the policy refuses name, saying how to enable it.
func (r Remediation) Why(name string) string {
	if !r.Enabled {
		return name + " changes the cluster and remediation is disabled (medic is read-only by default): " +
			"set remediation.enabled: true and list " + name + " in remediation.allowed (docs/security.md)"
	}
	return name + " is not in remediation.allowed: add it there to let playbooks use it (docs/security.md)"
}
