package playbooks

import (
	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/triggers"
)

// Plugins are the registries a playbook's entries are built from: the
// binary's wiring passes internal/plugins.Builtin's, a test the few it
// needs. There is no package-level registry to fall back on: the loader
// links no plugin itself, so what a playbook may name is what the wiring
// lists.
type Plugins struct {
	// Triggers builds a playbook's triggers (on_prometheus_alert, …).
	Triggers *triggers.Registry
	// Actions builds a playbook's actions (logs_enricher, ask_ai, …).
	Actions *actions.Registry
}
