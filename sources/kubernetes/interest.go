package kubernetes

import (
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/triggers"
)

// Want is one thing the running playbook set wants from the cluster: a
// playbook trigger over Kubernetes events (triggers/kubernetes.Trigger is
// one). The detector knows no more of a trigger than this, so the matchers
// stay pure functions of an event and the source imports none of them.
type Want interface {
	// Name is the trigger's playbook name, for logs.
	Name() string
	// ID identifies the trigger's parameters: an unchanged set of IDs is an
	// unchanged interest.
	ID() string
	// Kind is the event kind the trigger matches.
	Kind() event.Kind
	// Filter reports whether ev passes the trigger's filters (its rate
	// limit is the engine's: triggers.Limited).
	Filter(ev *event.Event) bool
	// Delay is how long a state must last before the trigger fires
	// (fire_delay, duration); 0 means at once.
	Delay() time.Duration
	// Resources are the resources a change trigger watches through the
	// dynamic client; nil for the others.
	Resources() []schema.GroupVersionResource
}

// Interest is what the running playbook set wants the detector to watch,
// computed from its triggers and handed to the detector on every (re)load
// (Detector.SetInterest): which event kinds (and so which informers), which
// resources the change triggers name, and each trigger's filters and
// delay. The zero Interest watches nothing.
type Interest struct {
	byKind map[event.Kind][]Want
	gvrs   map[schema.GroupVersionResource]bool
	sig    string // the wants' IDs: an unchanged set is not applied again
}

// NewInterest collects wants.
func NewInterest(wants ...Want) *Interest {
	in := &Interest{byKind: map[event.Kind][]Want{}, gvrs: map[schema.GroupVersionResource]bool{}}
	ids := make([]string, 0, len(wants))
	for _, w := range wants {
		in.byKind[w.Kind()] = append(in.byKind[w.Kind()], w)
		for _, gvr := range w.Resources() {
			in.gvrs[gvr] = true
		}
		ids = append(ids, w.ID())
	}
	sort.Strings(ids)
	in.sig = strings.Join(ids, ",")
	return in
}

// InterestOf keeps the triggers among ts that are about Kubernetes events
// (those that are a Want); the others (on_prometheus_alert, …) are no
// business of the detector.
func InterestOf(ts []triggers.Trigger) *Interest {
	var wants []Want
	for _, t := range ts {
		if w, ok := t.(Want); ok {
			wants = append(wants, w)
		}
	}
	return NewInterest(wants...)
}

// Wants lists the wants for event kind k.
func (in *Interest) Wants(k event.Kind) []Want {
	if in == nil {
		return nil
	}
	return in.byKind[k]
}

// Any reports whether some want is for one of kinds.
func (in *Interest) Any(kinds ...event.Kind) bool {
	return slices.ContainsFunc(kinds, func(k event.Kind) bool { return len(in.Wants(k)) > 0 })
}

// Kinds lists the event kinds wanted, sorted.
func (in *Interest) Kinds() []event.Kind {
	if in == nil {
		return nil
	}
	out := make([]event.Kind, 0, len(in.byKind))
	for k, ws := range in.byKind {
		if len(ws) > 0 {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// Watches reports whether a change trigger names gvr.
func (in *Interest) Watches(gvr schema.GroupVersionResource) bool {
	return in != nil && in.gvrs[gvr]
}

// Delays lists the distinct delays of the wants for kind k, shortest first.
func (in *Interest) Delays(k event.Kind) []time.Duration {
	var out []time.Duration
	for _, w := range in.Wants(k) {
		if d := w.Delay(); d > 0 && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}
