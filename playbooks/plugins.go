package playbooks

import "github.com/medichq/medic/triggers"

// Plugins are the registries a playbook's entries are built from: the
// binary's wiring passes internal/plugins.Builtin's, a test the few it
// needs. There is no package-level registry to fall back on: a loader
// without a trigger registry knows no trigger.
type Plugins struct {
	// Triggers builds a playbook's triggers (on_prometheus_alert, …).
	Triggers *triggers.Registry
}
