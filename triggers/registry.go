// Package triggers holds the registry of playbook triggers: the
// `on_prometheus_alert`, `on_pod_crash_loop`, … entries of a playbook that
// decide whether it runs for an event. The triggers live in sub-packages
// (prometheus, kubernetes, webhook, schedule) and register here from init,
// so adding one is one file and one Register line. They are pure matchers
// over events; the sources that produce the events (the Alertmanager
// webhook, the Kubernetes informers, the scheduler) live in sources/ and
// import none of them: the Kubernetes source and the scheduler see the
// triggers they serve through small interfaces of their own.
package triggers

import (
	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/registry"
)

// Trigger decides whether a playbook runs for an event.
type Trigger interface {
	// Kinds lists the event kinds the trigger can ever match; the engine uses
	// it to skip playbooks cheaply.
	Kinds() []event.Kind
	// Match reports whether the playbook should run for ev.
	Match(ev *event.Event) bool
}

var defs = registry.New[Trigger]("trigger")

// Definition describes one registered trigger.
type Definition = registry.Definition[Trigger]

// Register adds a trigger under name. P is its parameter struct; defaults
// returns it filled with defaults. A duplicate name panics at start-up.
func Register[P any](name, doc string, defaults func() *P, build func(*P) (Trigger, error)) {
	registry.Add(defs, name, doc, defaults, build)
}

// Build decodes node strictly into the trigger's parameters and builds it.
func Build(name string, node *yaml.Node) (Trigger, error) { return defs.Build(name, node) }

// Names lists registered triggers, sorted.
func Names() []string { return defs.Names() }

// Definitions lists registered triggers sorted by name, for docs and schemas.
func Definitions() []Definition { return defs.Definitions() }
