package scope

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
	k8slabels "k8s.io/apimachinery/pkg/labels"

	"github.com/medichq/medic/params"
)

// LabelMatch is a rule's condition on an event's labels (or annotations).
// It reads two shapes:
//
//	labels: {team: "pay.*", tier: web}        # medic: every key's pattern must match
//	labels: "app=api,env!=prod,team in (a,b)" # Robusta: a Kubernetes label selector
//	labels: ["team=a", "team=b"]              # Robusta: any one selector matches
//
// Selectors are parsed by Kubernetes' own parser (=, ==, !=, in, notin,
// key, !key), so they mean what they mean in kubectl. A term whose value is
// not a valid label value ("app=api-.*") is Robusta's regular-expression
// form: key=regex or key!=regex, matched against the whole value.
type LabelMatch struct {
	patterns  map[string]Pattern
	selectors []selector // any one matches
	src       any        // what the configuration said, for MarshalYAML
}

// selector is one selector string: every term must match.
type selector []term

type term struct {
	req    *k8slabels.Requirement // a term Kubernetes' parser understood
	key    string                 // otherwise: key=regex or key!=regex
	re     Pattern
	negate bool
}

// regexTerm is a selector term whose value is a regular expression; the
// value may hold anything but the comma that separates terms.
var regexTerm = regexp.MustCompile(`^\s*([A-Za-z0-9][-A-Za-z0-9_./]*)\s*(!=|==|=)\s*(.*?)\s*$`)

// parseSelector parses one selector string.
func parseSelector(s string) (selector, error) {
	var sel selector
	for _, part := range splitTerms(s) {
		if strings.TrimSpace(part) == "" {
			return nil, fmt.Errorf("selector %q: empty term", s)
		}
		reqs, err := k8slabels.ParseToRequirements(part)
		if err == nil && len(reqs) == 1 {
			sel = append(sel, term{req: &reqs[0]})
			continue
		}
		m := regexTerm.FindStringSubmatch(part)
		if m == nil {
			if err == nil {
				err = fmt.Errorf("expected one requirement")
			}
			return nil, fmt.Errorf("selector %q: term %q: %w", s, strings.TrimSpace(part), err)
		}
		p, perr := NewPattern(m[3])
		if perr != nil {
			return nil, fmt.Errorf("selector %q: term %q: %w", s, strings.TrimSpace(part), perr)
		}
		sel = append(sel, term{key: m[1], re: p, negate: m[2] == "!="})
	}
	return sel, nil
}

// splitTerms splits a selector at the commas outside parentheses
// ("team in (a,b),env=prod" has two terms).
func splitTerms(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func (sel selector) match(m map[string]string) bool {
	for _, t := range sel {
		if t.req != nil {
			if !t.req.Matches(k8slabels.Set(m)) {
				return false
			}
			continue
		}
		if t.re.Match(m[t.key]) == t.negate {
			return false
		}
	}
	return true
}

// UnmarshalYAML reads a mapping of patterns, a selector string or a list of
// selector strings.
func (l *LabelMatch) UnmarshalYAML(node *yaml.Node) error { return l.decode(node, "labels") }

// AnnotationMatch is a LabelMatch on annotations; its errors say so.
type AnnotationMatch struct{ LabelMatch }

// UnmarshalYAML reads the same shapes as LabelMatch.
func (a *AnnotationMatch) UnmarshalYAML(node *yaml.Node) error {
	return a.decode(node, "annotations")
}

func (l *LabelMatch) decode(node *yaml.Node, field string) error {
	*l = LabelMatch{}
	switch node.Kind {
	case yaml.MappingNode:
		var m map[string]Pattern
		if err := node.Decode(&m); err != nil {
			return err
		}
		l.patterns = m
		src := map[string]string{}
		for k, p := range m {
			src[k] = p.String()
		}
		l.src = src
		return nil
	case yaml.ScalarNode:
		sel, err := parseSelector(node.Value)
		if err != nil {
			return params.Errorf(node, "%s: %v", field, err)
		}
		l.selectors, l.src = []selector{sel}, node.Value
		return nil
	case yaml.SequenceNode:
		var srcs []string
		for _, item := range node.Content {
			if item.Kind != yaml.ScalarNode {
				return params.Errorf(item, "%s: expected a label selector string such as \"app=api,env!=prod\"", field)
			}
			sel, err := parseSelector(item.Value)
			if err != nil {
				return params.Errorf(item, "%s: %v", field, err)
			}
			l.selectors = append(l.selectors, sel)
			srcs = append(srcs, item.Value)
		}
		l.src = srcs
		return nil
	}
	return params.Errorf(node, "%s: expected a mapping of patterns, a label selector string or a list of them", field)
}

// MarshalYAML writes back what the configuration said.
func (l LabelMatch) MarshalYAML() (any, error) { return l.src, nil }

// JSONSchema describes the YAML shapes a LabelMatch reads, for the playbook
// JSON schema.
func (LabelMatch) JSONSchema() map[string]any {
	return map[string]any{
		"description": "Regular expressions by key (every one must match the whole value), or a Kubernetes label selector (\"app=api,env!=prod\", \"team in (a,b)\"; a value may be a regular expression), or a list of selectors (any may match).",
		"anyOf": []any{
			map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
			map[string]any{"type": "string"},
			map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "minItems": 1},
		},
	}
}

// IsZero reports whether the match sets no condition.
func (l LabelMatch) IsZero() bool { return len(l.patterns) == 0 && len(l.selectors) == 0 }

// Match reports whether m satisfies the condition. A pattern on a key m
// lacks is matched against "".
func (l *LabelMatch) Match(m map[string]string) bool {
	for k, p := range l.patterns {
		if !p.Match(m[k]) {
			return false
		}
	}
	if len(l.selectors) == 0 {
		return true
	}
	for _, sel := range l.selectors {
		if sel.match(m) {
			return true
		}
	}
	return false
}

// MatchLabels returns a LabelMatch of whole-value patterns, for code that
// builds scopes (tests, built-in tables).
func MatchLabels(patterns map[string]Pattern) LabelMatch {
	return LabelMatch{patterns: patterns}
}
