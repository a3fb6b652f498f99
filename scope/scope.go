// Package scope implements include/exclude rules over an event's namespace,
// severity, kind, subject, labels and annotations. Playbook triggers and sink
// routing share it, so one rule reads the same in both places.
package scope

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/params"
)

// Pattern is a regular expression that must match the whole value
// ("prod-.*" matches "prod-eu" but not "preprod-eu"). Anchoring by default
// avoids the classic surprise of "prod" matching "nonprod".
//
// Robusta writes a list where any value may match ([prod, staging]); a
// Pattern reads that too, as the alternation of its anchored items.
type Pattern struct {
	re   *regexp.Regexp
	src  string
	list []string // the items when the configuration gave a list
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
	switch node.Kind {
	case yaml.ScalarNode:
		np, err := NewPattern(node.Value)
		if err != nil {
			return params.Errorf(node, "%v", err)
		}
		*p = np
		return nil
	case yaml.SequenceNode:
		if len(node.Content) == 0 {
			return params.Errorf(node, "expected a regular expression or a non-empty list of them")
		}
		items := make([]string, 0, len(node.Content))
		alts := make([]string, 0, len(node.Content))
		for _, item := range node.Content {
			if item.Kind != yaml.ScalarNode {
				return params.Errorf(item, "expected a regular expression string")
			}
			if _, err := NewPattern(item.Value); err != nil {
				return params.Errorf(item, "%v", err)
			}
			items = append(items, item.Value)
			alts = append(alts, "(?:"+item.Value+")")
		}
		np, err := NewPattern(strings.Join(alts, "|"))
		if err != nil {
			return params.Errorf(node, "%v", err)
		}
		np.list = items
		*p = np
		return nil
	}
	return params.Errorf(node, "expected a regular expression string or a list of them")
}

// MarshalYAML writes the source expression (or list) back.
func (p Pattern) MarshalYAML() (any, error) {
	if p.list != nil {
		return p.list, nil
	}
	return p.src, nil
}

// JSONSchema describes the YAML shapes a Pattern reads, for the playbook
// JSON schema.
func (Pattern) JSONSchema() map[string]any {
	return map[string]any{
		"description": "A regular expression matched against the whole value, or a list of them (any may match).",
		"anyOf": []any{
			map[string]any{"type": "string"},
			map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "minItems": 1},
		},
	}
}

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

// IsZero reports whether the pattern is unset (it then matches everything).
func (p Pattern) IsZero() bool { return p.re == nil }

// Rule matches when every field it sets matches. Besides medic's own keys it
// reads the attributes Robusta's sink scopes use: identifier (the alert
// name, or medic's event kind), title and source.
type Rule struct {
	Kind        Pattern         `yaml:"kind,omitempty"`
	Namespace   Pattern         `yaml:"namespace,omitempty"`
	Name        Pattern         `yaml:"name,omitempty"`
	Severity    Pattern         `yaml:"severity,omitempty"`
	Identifier  Pattern         `yaml:"identifier,omitempty"`
	Title       Pattern         `yaml:"title,omitempty"`
	Source      Pattern         `yaml:"source,omitempty"`
	Labels      LabelMatch      `yaml:"labels,omitempty"`
	Annotations AnnotationMatch `yaml:"annotations,omitempty"`
}

// Match reports whether ev satisfies every condition of the rule.
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
	if r.Severity.set() && !r.Severity.Match(string(severity)) && !r.Severity.Match(robustaSeverity[severity]) {
		return false
	}
	if r.Identifier.set() && !r.Identifier.Match(identifierOf(ev)) {
		return false
	}
	if r.Title.set() && !r.Title.Match(ev.Title) {
		return false
	}
	if r.Source.set() && !r.Source.Match(ev.Source) {
		return false
	}
	return r.Labels.Match(ev.Labels) && r.Annotations.Match(ev.Annotations)
}

// robustaSeverity is the name Robusta gives the severity of a finding from an
// alert of medic's severity (Robusta maps Prometheus' critical to HIGH,
// error to MEDIUM, warning to LOW), so a sink scope written for Robusta
// (severity: HIGH) gets what it got there. medic's own names are lower
// case, Robusta's upper case: the two never collide.
var robustaSeverity = map[event.Severity]string{
	event.SeverityCritical: "HIGH",
	event.SeverityHigh:     "MEDIUM",
	event.SeverityWarning:  "LOW",
	event.SeverityInfo:     "INFO",
	event.SeverityNone:     "DEBUG",
}

// identifierOf is what Robusta calls an alert's identifier (its aggregation
// key): the alert name, else medic's kind of event.
func identifierOf(ev *event.Event) string {
	if n := ev.Labels["alertname"]; n != "" {
		return n
	}
	return string(ev.Kind)
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
	Include []Rule `yaml:"include,omitempty"`
	Exclude []Rule `yaml:"exclude,omitempty"`
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
