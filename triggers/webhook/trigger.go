// Package webhook holds on_webhook, the playbook trigger over the events of
// the generic webhook sources (sources/webhook): a pure function of an
// event.
package webhook

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/webhookevent"
	"github.com/medichq/medic/scope"
	"github.com/medichq/medic/triggers"
)

// TriggerName is the playbook trigger selecting webhook events.
const TriggerName = "on_webhook"

// Register adds on_webhook to r.
func Register(r *triggers.Registry) {
	triggers.Add(r, TriggerName,
		"Runs the playbook for events posted to a generic webhook source (`webhook_sources` in the configuration, "+
			"POST /api/webhooks/<name>): Argo CD, Flux, Kubecost presets or your own CEL mapping.",
		func() *TriggerParams { return &TriggerParams{Status: "firing"} },
		NewTrigger)
}

// TriggerParams are on_webhook's parameters.
type TriggerParams struct {
	// Source names the webhook source; empty matches every source.
	Source string `yaml:"source"`
	// Status is firing (the default), resolved or all.
	Status string `yaml:"status"`
	// Scope adds include/exclude rules over the event's labels, namespace,
	// severity and more.
	Scope scope.Scope `yaml:"scope"`
	// RateLimit runs the playbook at most once per window for events of the
	// same source and subject (its kind, namespace and name; the title when
	// the mapping sets no subject), default 0: for every event.
	RateLimit triggers.Duration `yaml:"rate_limit"`
}

// Validate checks the values at load time.
func (p *TriggerParams) Validate() error {
	if p.Status == "" {
		p.Status = "firing"
	}
	if !slices.Contains([]string{"firing", "resolved", "all"}, p.Status) {
		return fmt.Errorf("status %q is not firing, resolved or all", p.Status)
	}
	if p.Source != "" && !webhookevent.ValidName(p.Source) {
		return fmt.Errorf("source %q is not a webhook source name (lower-case letters, digits, '-', '_')", p.Source)
	}
	return nil
}

// Trigger is a built on_webhook trigger.
type Trigger struct {
	p  TriggerParams
	id string // triggers.ParamsID: keys the rate limit
}

// NewTrigger builds the trigger.
func NewTrigger(p *TriggerParams) (triggers.Trigger, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	id, err := triggers.ParamsID(TriggerName, p)
	if err != nil {
		return nil, err
	}
	return &Trigger{p: *p, id: id}, nil
}

// RateLimit implements triggers.Limited.
func (t *Trigger) RateLimit() time.Duration { return t.p.RateLimit.D() }

// LimitKey implements triggers.Limited: the trigger, the event's source and
// its subject (or title).
func (t *Trigger) LimitKey(ev *event.Event) string {
	what := ev.Subject.String()
	if ev.Subject.IsZero() {
		what = ev.Title
	}
	return triggers.LimitKeyOf(t.id, ev.Source, what)
}

// Kinds implements triggers.Trigger.
func (t *Trigger) Kinds() []event.Kind { return []event.Kind{webhookevent.Kind} }

// Match implements triggers.Trigger.
func (t *Trigger) Match(ev *event.Event) bool {
	if ev.Kind != webhookevent.Kind || !strings.HasPrefix(ev.Source, webhookevent.SourcePrefix) {
		return false
	}
	if t.p.Source != "" && ev.Source != webhookevent.SourcePrefix+t.p.Source {
		return false
	}
	if t.p.Status != "all" && string(ev.Status) != t.p.Status {
		return false
	}
	return t.p.Scope.Match(ev, ev.Severity)
}

// Source is the source the trigger selects ("" for any).
func (t *Trigger) Source() string { return t.p.Source }
