// Package scope implements include/exclude rules over an event's namespace,
// severity, kind, subject, labels and annotations. Playbook triggers and sink
// routing share it, so one rule reads the same in both places.
package scope

import (
	"fmt"
	"regexp"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/params"
)

// Pattern is a regular expression that must match the whole value
// ("prod-.*" matches "prod-eu" but not "preprod-eu"). Anchoring by default
// avoids the classic surprise of "prod" matching "nonprod".
type Pattern struct {
	re  *regexp.Regexp
	src string
}

// MustPattern compiles expr or panics; for tests and built-in tables.
func MustPattern(expr string) Pattern {
	p, err := NewPattern(expr)
	if err != nil {
		panic(err)
	}
	return p
}

// NewPattern compiles expr anchored at both ends.
func NewPattern(expr string) (Pattern, error) {
	if _, err := regexp.Compile(expr); err != nil {
		return Pattern{}, fmt.Errorf("invalid regular expression %q: %w", expr, err)
	}
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return Pattern{}, fmt.Errorf("invalid regular expression %q: %w", expr, err)
	}
	return Pattern{re: re, src: expr}, nil
}

// UnmarshalYAML compiles the pattern at load time so a bad regex is a load
// error with its line.
func (p *Pattern) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return params.Errorf(node, "expected a regular expression string")
	}
	np, err := NewPattern(node.Value)
	if err != nil {
		return params.Errorf(node, "%v", err)
	}
	*p = np
	return nil
}

// MarshalYAML writes the source expression back.
func (p Pattern) MarshalYAML() (any, error) { return p.src, nil }

// String returns the source expression.
func (p Pattern) String() string { return p.src }

// Match reports whether the pattern matches the whole value. An empty
// (unset) pattern matches everything.
func (p Pattern) Match(v string) bool {
	if p.re == nil {
		return true
	}
	return p.re.MatchString(v)
}

func (p Pattern) set() bool { return p.re != nil }

// Rule matches when every field it sets matches.
type Rule struct {
	Kind        Pattern            `yaml:"kind"`
	Namespace   Pattern            `yaml:"namespace"`
	Name        Pattern            `yaml:"name"`
	Severity    Pattern            `yaml:"severity"`
	Labels      map[string]Pattern `yaml:"labels"`
	Annotations map[string]Pattern `yaml:"annotations"`
}

// Match reports whether ev satisfies every condition of the rule. A label
// pattern on a label the event lacks is matched against "".
func (r *Rule) Match(ev *event.Event, severity event.Severity) bool {
	if r.Kind.set() && !r.Kind.Match(string(ev.Kind)) {
		return false
	}
	if r.Namespace.set() && !r.Namespace.Match(namespaceOf(ev)) {
		return false
	}
	if r.Name.set() && !r.Name.Match(ev.Subject.Name) {
		return false
	}
	if r.Severity.set() && !r.Severity.Match(string(severity)) {
		return false
	}
	for k, p := range r.Labels {
		if !p.Match(ev.Labels[k]) {
			return false
		}
	}
	for k, p := range r.Annotations {
		if !p.Match(ev.Annotations[k]) {
			return false
		}
	}
	return true
}

func namespaceOf(ev *event.Event) string {
	if ev.Subject.Namespace != "" {
		return ev.Subject.Namespace
	}
	return ev.Labels["namespace"]
}

// Scope is a pair of rule lists. With no include rules everything is
// included; any matching exclude rule wins over include.
type Scope struct {
	Include []Rule `yaml:"include"`
	Exclude []Rule `yaml:"exclude"`
}

// IsZero reports whether the scope has no rules.
func (s *Scope) IsZero() bool { return s == nil || (len(s.Include) == 0 && len(s.Exclude) == 0) }

// Match applies the scope to an event whose effective severity is severity
// (a finding may raise or lower the event's own).
func (s *Scope) Match(ev *event.Event, severity event.Severity) bool {
	if s == nil {
		return true
	}
	for i := range s.Exclude {
		if s.Exclude[i].Match(ev, severity) {
			return false
		}
	}
	if len(s.Include) == 0 {
		return true
	}
	for i := range s.Include {
		if s.Include[i].Match(ev, severity) {
			return true
		}
	}
	return false
}
