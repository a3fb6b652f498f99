// Package triggers holds the registry of playbook triggers: the
// `on_prometheus_alert`, `on_pod_crash_loop`, … entries of a playbook that
// decide whether it runs for an event. The triggers live in sub-packages
// (prometheus, kubernetes, webhook, schedule); each exports
// Register(*Registry), and the binary's wiring (internal/plugins.Builtin)
// calls every one of them into one Registry value that it hands to the
// playbook loader. No package-level registry, no init: what a binary or a
// test can build is what it registered. They are pure matchers
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

// Definition describes one registered trigger.
type Definition = registry.Definition[Trigger]

// Registry holds the triggers a binary (or a test) knows, by name. It is a
// value handed to whoever builds triggers (the playbook loader, the Robusta
// importer, the CLI's list and schema commands), never a package global.
type Registry struct {
	defs *registry.Registry[Trigger]
}

// NewRegistry returns a registry holding the triggers of the packages whose
// Register functions it is given (none: an empty one), as a test builds
// exactly the triggers it needs: triggers.NewRegistry(prometheus.Register).
func NewRegistry(register ...func(*Registry)) *Registry {
	r := &Registry{defs: registry.New[Trigger]("trigger")}
	for _, add := range register {
		add(r)
	}
	return r
}

// Add adds a trigger under name. P is its parameter struct; defaults
// returns it filled with defaults. A duplicate name panics: a programming
// error, caught the first time the registry is built.
func Add[P any](r *Registry, name, doc string, defaults func() *P, build func(*P) (Trigger, error)) {
	registry.Add(r.defs, name, doc, defaults, build)
}

// Build decodes node strictly into the trigger's parameters and builds it.
func (r *Registry) Build(name string, node *yaml.Node) (Trigger, error) {
	return r.entries().Build(name, node)
}

// Has reports whether name is a registered trigger.
func (r *Registry) Has(name string) bool { return r.entries().Has(name) }

// Names lists registered triggers, sorted.
func (r *Registry) Names() []string { return r.entries().Names() }

// Definitions lists registered triggers sorted by name, for docs and schemas.
func (r *Registry) Definitions() []Definition { return r.entries().Definitions() }

// none is what a nil *Registry holds: no trigger, so that a loader given no
// registry (a zero playbooks.Options) reports "unknown trigger" instead of
// crashing.
var none = registry.New[Trigger]("trigger")

func (r *Registry) entries() *registry.Registry[Trigger] {
	if r == nil {
		return none
	}
	return r.defs
}
