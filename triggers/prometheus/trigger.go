// Package prometheus holds on_prometheus_alert, the playbook trigger over
// the alerts the Alertmanager source (sources/alertmanager) turns into
// events: a pure function of an event, with its labels_selector parser.
package prometheus

import (
	"fmt"
	"strings"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/scope"
	"github.com/medichq/medic/triggers"
)

// TriggerName is the playbook trigger selecting Prometheus alerts.
const TriggerName = "on_prometheus_alert"

// Register adds on_prometheus_alert to r.
func Register(r *triggers.Registry) {
	triggers.Add(r, TriggerName,
		"Runs the playbook for Prometheus alerts received from Alertmanager (or sent with `medic trigger prometheus_alert`).",
		func() *TriggerParams {
			return &TriggerParams{Status: "firing", RateLimitBy: []string{"alertname", "namespace"}}
		},
		NewTrigger)
}

// TriggerParams are on_prometheus_alert's parameters. Every condition that
// is set must hold; unset conditions match everything.
type TriggerParams struct {
	// AlertName must equal the alertname label exactly.
	AlertName string `yaml:"alert_name"`
	// Status is firing (the default), resolved or all.
	Status string `yaml:"status"`
	// NamespacePrefix, PodNamePrefix and InstanceNamePrefix test the
	// namespace, pod and instance labels; an absent label does not match.
	NamespacePrefix    string `yaml:"namespace_prefix"`
	PodNamePrefix      string `yaml:"pod_name_prefix"`
	InstanceNamePrefix string `yaml:"instance_name_prefix"`
	// NamePrefix tests the subject's name (pod, deployment, node, …).
	NamePrefix string `yaml:"name_prefix"`
	// LabelsSelector is a Kubernetes-style equality selector over the
	// alert's labels: "team=a,env!=dev,page,!silenced".
	LabelsSelector string `yaml:"labels_selector"`
	// Scope adds include/exclude rules over labels and annotations.
	Scope scope.Scope `yaml:"scope"`
	// RateLimit runs the playbook at most once per window for alerts with
	// the same RateLimitBy labels (default 0: for every alert), on every
	// replica and across restarts; the alerts held back are counted in
	// medic_trigger_rate_limited_total.
	RateLimit triggers.Duration `yaml:"rate_limit"`
	// RateLimitBy are the labels whose values the rate limit counts per
	// (default alertname and namespace; namespace is the subject's when the
	// alert has no namespace label).
	RateLimitBy []string `yaml:"rate_limit_by"`
}

// Validate checks the values at load time, so a typo is an error with a line.
func (p *TriggerParams) Validate() error {
	switch p.Status {
	case "firing", "resolved", "all":
	case "":
		p.Status = "firing"
	default:
		return fmt.Errorf("status %q is not firing, resolved or all", p.Status)
	}
	if _, err := ParseSelector(p.LabelsSelector); err != nil {
		return fmt.Errorf("labels_selector: %w", err)
	}
	if p.RateLimit > 0 && len(p.RateLimitBy) == 0 {
		return fmt.Errorf("rate_limit_by: is empty; name the labels rate_limit counts per (alertname, namespace, …)")
	}
	for i, l := range p.RateLimitBy {
		if strings.TrimSpace(l) == "" {
			return fmt.Errorf("rate_limit_by[%d]: must not be empty", i)
		}
	}
	return nil
}

// Trigger is a built on_prometheus_alert trigger.
type Trigger struct {
	p        TriggerParams
	selector Selector
	id       string // triggers.ParamsID: keys the rate limit
}

// NewTrigger builds the trigger from its parameters.
func NewTrigger(p *TriggerParams) (triggers.Trigger, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	sel, err := ParseSelector(p.LabelsSelector)
	if err != nil {
		return nil, fmt.Errorf("labels_selector: %w", err)
	}
	id, err := triggers.ParamsID(TriggerName, p)
	if err != nil {
		return nil, err
	}
	return &Trigger{p: *p, selector: sel, id: id}, nil
}

// RateLimit implements triggers.Limited.
func (t *Trigger) RateLimit() time.Duration { return t.p.RateLimit.D() }

// LimitKey implements triggers.Limited: the trigger and the values of its
// rate_limit_by labels.
func (t *Trigger) LimitKey(ev *event.Event) string {
	vals := make([]string, len(t.p.RateLimitBy))
	for i, l := range t.p.RateLimitBy {
		vals[i] = ev.Labels[l]
		if l == "namespace" {
			vals[i] = namespaceOf(ev)
		}
	}
	return triggers.LimitKeyOf(t.id, vals...)
}

// Kinds implements triggers.Trigger.
func (t *Trigger) Kinds() []event.Kind { return []event.Kind{event.KindPrometheusAlert} }

// Match implements triggers.Trigger.
func (t *Trigger) Match(ev *event.Event) bool {
	if ev == nil || ev.Kind != event.KindPrometheusAlert {
		return false
	}
	if t.p.Status != "all" && string(ev.Status) != t.p.Status {
		return false
	}
	if t.p.AlertName != "" && ev.Labels["alertname"] != t.p.AlertName {
		return false
	}
	if !hasPrefix(namespaceOf(ev), t.p.NamespacePrefix) ||
		!hasPrefix(ev.Labels["pod"], t.p.PodNamePrefix) ||
		!hasPrefix(ev.Labels["instance"], t.p.InstanceNamePrefix) ||
		!hasPrefix(ev.Subject.Name, t.p.NamePrefix) {
		return false
	}
	if !t.selector.Matches(ev.Labels) {
		return false
	}
	return t.p.Scope.Match(ev, ev.Severity)
}

// hasPrefix treats an empty prefix as "no condition"; with a prefix, an
// empty value never matches, so namespace_prefix: "" and a cluster-wide
// alert do not surprise anyone.
func hasPrefix(v, prefix string) bool {
	return prefix == "" || (v != "" && strings.HasPrefix(v, prefix))
}

func namespaceOf(ev *event.Event) string {
	if ev.Subject.Namespace != "" {
		return ev.Subject.Namespace
	}
	return ev.Labels["namespace"]
}

// Selector is a parsed labels_selector.
//
// Written here rather than taken from k8s.io/apimachinery/pkg/labels (which
// the Kubernetes triggers use): that parser insists on Kubernetes label
// values, and Prometheus label values are not (instance="10.0.0.7:9100",
// job="kube-state-metrics/main"). The equality-based subset of the syntax is
// supported: "k=v", "k==v", "k!=v", "k" (present) and "!k" (absent),
// comma-separated. Set-based forms ("k in (a,b)") are refused with an error
// rather than misread.
type Selector []Requirement

// Requirement is one term of a selector.
type Requirement struct {
	Key   string
	Op    Op
	Value string
}

// Op is a selector operator.
type Op string

// Selector operators.
const (
	OpEquals    Op = "="
	OpNotEquals Op = "!="
	OpExists    Op = "exists"
	OpNotExists Op = "!"
)

// ParseSelector parses a labels_selector; "" selects everything.
func ParseSelector(s string) (Selector, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	terms := strings.Split(s, ",")
	sel := make(Selector, 0, len(terms))
	for _, term := range terms {
		term = strings.TrimSpace(term)
		if term == "" {
			return nil, fmt.Errorf("empty term in %q", s)
		}
		r, err := parseRequirement(term)
		if err != nil {
			return nil, err
		}
		sel = append(sel, r)
	}
	return sel, nil
}

func parseRequirement(term string) (Requirement, error) {
	if strings.ContainsAny(term, "()") || strings.Contains(term, " in ") || strings.Contains(term, " notin ") {
		return Requirement{}, fmt.Errorf("%q: set-based selectors (in, notin) are not supported; use k=v, k!=v, k or !k", term)
	}
	var r Requirement
	switch {
	case strings.Contains(term, "!="):
		k, v, _ := strings.Cut(term, "!=")
		r = Requirement{Key: strings.TrimSpace(k), Op: OpNotEquals, Value: strings.TrimSpace(v)}
	case strings.Contains(term, "=="):
		k, v, _ := strings.Cut(term, "==")
		r = Requirement{Key: strings.TrimSpace(k), Op: OpEquals, Value: strings.TrimSpace(v)}
	case strings.Contains(term, "="):
		k, v, _ := strings.Cut(term, "=")
		r = Requirement{Key: strings.TrimSpace(k), Op: OpEquals, Value: strings.TrimSpace(v)}
	case strings.HasPrefix(term, "!"):
		r = Requirement{Key: strings.TrimSpace(term[1:]), Op: OpNotExists}
	default:
		r = Requirement{Key: term, Op: OpExists}
	}
	if r.Key == "" {
		return r, fmt.Errorf("%q: the label name is missing", term)
	}
	if strings.ContainsAny(r.Key, "=! \t") || strings.ContainsAny(r.Value, "=!") {
		return r, fmt.Errorf("%q is not a valid selector term; use k=v, k!=v, k or !k", term)
	}
	return r, nil
}

// Matches reports whether labels satisfy every requirement. As in
// Kubernetes, "k!=v" also matches when k is absent.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s {
		v, ok := labels[r.Key]
		switch r.Op {
		case OpEquals:
			if !ok || v != r.Value {
				return false
			}
		case OpNotEquals:
			if ok && v == r.Value {
				return false
			}
		case OpExists:
			if !ok {
				return false
			}
		case OpNotExists:
			if ok {
				return false
			}
		}
	}
	return true
}

// String renders the selector in its canonical form.
func (s Selector) String() string {
	parts := make([]string, 0, len(s))
	for _, r := range s {
		switch r.Op {
		case OpExists:
			parts = append(parts, r.Key)
		case OpNotExists:
			parts = append(parts, "!"+r.Key)
		default:
			parts = append(parts, r.Key+string(r.Op)+r.Value)
		}
	}
	return strings.Join(parts, ",")
}
