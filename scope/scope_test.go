package scope_test

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/params"
	"github.com/medichq/medic/scope"
)

func TestPatternIsAnchored(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr, value string
		want        bool
	}{
		{"prod", "prod", true},
		{"prod", "nonprod", false},
		{"prod", "production", false},
		{"prod-.*", "prod-eu", true},
		{"prod-.*", "preprod-eu", false},
		{"prod|staging", "staging", true},
		{"prod|staging", "prod-staging", false}, // the alternation is anchored as a whole
		{"critical|high", "high", true},
		{".*", "", true},
		{"kube-.*|monitoring", "kube-system", true},
		{"", "", true},
		{"", "anything", false}, // an explicit empty pattern matches only ""
	}
	for _, tt := range tests {
		p, err := scope.NewPattern(tt.expr)
		if err != nil {
			t.Fatalf("NewPattern(%q): %v", tt.expr, err)
		}
		if got := p.Match(tt.value); got != tt.want {
			t.Errorf("Pattern(%q).Match(%q) = %v, want %v", tt.expr, tt.value, got, tt.want)
		}
		if p.String() != tt.expr {
			t.Errorf("Pattern(%q).String() = %q", tt.expr, p.String())
		}
	}
	var unset scope.Pattern
	if !unset.Match("anything") {
		t.Error("an unset pattern must match everything")
	}
}

func TestNewPatternInvalid(t *testing.T) {
	t.Parallel()
	_, err := scope.NewPattern("prod-(")
	if err == nil || !strings.Contains(err.Error(), `invalid regular expression "prod-("`) {
		t.Errorf("NewPattern(prod-() = %v, want an invalid regular expression error", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("MustPattern of an invalid expression did not panic")
		}
	}()
	scope.MustPattern("[")
}

func decode(t *testing.T, doc string) scope.Scope {
	t.Helper()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &node); err != nil {
		t.Fatalf("parse YAML: %v", err)
	}
	var s scope.Scope
	if err := params.Decode(&node, &s); err != nil {
		t.Fatalf("decode scope: %v", err)
	}
	return s
}

func TestScopeMatch(t *testing.T) {
	t.Parallel()
	ev := func(ns string, labels, annotations map[string]string) *event.Event {
		return &event.Event{
			Kind:        event.KindPodCrashLoop,
			Subject:     event.Subject{Kind: "Pod", Namespace: ns, Name: "cart-7d9"},
			Labels:      labels,
			Annotations: annotations,
		}
	}
	tests := []struct {
		name  string
		scope string
		ev    *event.Event
		sev   event.Severity
		want  bool
	}{
		{"empty scope matches everything", "{}", ev("prod", nil, nil), event.SeverityInfo, true},
		{"include namespace", "include: [{namespace: prod}]", ev("prod", nil, nil), event.SeverityInfo, true},
		{"include is anchored", "include: [{namespace: prod}]", ev("nonprod", nil, nil), event.SeverityInfo, false},
		{"any include rule may match", "include: [{namespace: prod}, {namespace: staging}]", ev("staging", nil, nil), event.SeverityInfo, true},
		{"every field of a rule must match", "include: [{namespace: prod, severity: critical}]", ev("prod", nil, nil), event.SeverityHigh, false},
		{"severity is the one passed, not the event's", "include: [{severity: critical}]", ev("prod", nil, nil), event.SeverityCritical, true},
		{"kind", "include: [{kind: pod_.*}]", ev("prod", nil, nil), event.SeverityInfo, true},
		{"kind mismatch", "include: [{kind: node_.*}]", ev("prod", nil, nil), event.SeverityInfo, false},
		{"subject name", "include: [{name: cart-.*}]", ev("prod", nil, nil), event.SeverityInfo, true},
		{"exclude only", "exclude: [{namespace: kube-.*}]", ev("kube-system", nil, nil), event.SeverityInfo, false},
		{"exclude only, not excluded", "exclude: [{namespace: kube-.*}]", ev("prod", nil, nil), event.SeverityInfo, true},
		{"exclude wins over include", "include: [{namespace: prod}]\nexclude: [{severity: info}]", ev("prod", nil, nil), event.SeverityInfo, false},
		{"include after a non-matching exclude", "include: [{namespace: prod}]\nexclude: [{severity: info}]", ev("prod", nil, nil), event.SeverityHigh, true},
		{"label", "include: [{labels: {team: pay.*}}]", ev("prod", map[string]string{"team": "payments"}, nil), event.SeverityInfo, true},
		{"label value anchored", "include: [{labels: {team: pay}}]", ev("prod", map[string]string{"team": "payments"}, nil), event.SeverityInfo, false},
		{"missing label matched against empty", "include: [{labels: {team: '.*'}}]", ev("prod", nil, nil), event.SeverityInfo, true},
		{"missing label fails a non-empty pattern", "include: [{labels: {team: .+}}]", ev("prod", nil, nil), event.SeverityInfo, false},
		{"every label must match", "include: [{labels: {team: payments, tier: web}}]", ev("prod", map[string]string{"team": "payments", "tier": "db"}, nil), event.SeverityInfo, false},
		{"annotation", "include: [{annotations: {runbook: 'https://.*'}}]", ev("prod", nil, map[string]string{"runbook": "https://wiki/x"}), event.SeverityInfo, true},
		{"annotation exclude", "exclude: [{annotations: {medic/silence: 'true'}}]", ev("prod", nil, map[string]string{"medic/silence": "true"}), event.SeverityInfo, false},
		{"namespace falls back to the namespace label", "include: [{namespace: prod}]", ev("", map[string]string{"namespace": "prod"}, nil), event.SeverityInfo, true},
		// Robusta's sink scope shapes.
		{"namespace list", "include: [{namespace: [staging, prod]}]", ev("prod", nil, nil), event.SeverityInfo, true},
		{"namespace list, no item matches", "include: [{namespace: [staging, dev]}]", ev("prod", nil, nil), event.SeverityInfo, false},
		{"namespace list items are anchored each", "include: [{namespace: [pro, d]}]", ev("prod", nil, nil), event.SeverityInfo, false},
		{"Robusta's HIGH is medic's critical", "include: [{severity: HIGH}]", ev("prod", nil, nil), event.SeverityCritical, true},
		{"Robusta's HIGH is not medic's high", "include: [{severity: HIGH}]", ev("prod", nil, nil), event.SeverityHigh, false},
		{"Robusta's MEDIUM is medic's high", "include: [{severity: MEDIUM}]", ev("prod", nil, nil), event.SeverityHigh, true},
		{"Robusta's LOW is medic's warning", "exclude: [{severity: [LOW, INFO, DEBUG]}]", ev("prod", nil, nil), event.SeverityWarning, false},
		{"severity list mixing both", "include: [{severity: [MEDIUM, critical]}]", ev("prod", nil, nil), event.SeverityHigh, true},
		{"severity list, not in it", "include: [{severity: [HIGH, high]}]", ev("prod", nil, nil), event.SeverityWarning, false},
		{"selector equality", "include: [{labels: 'team=payments'}]", ev("prod", map[string]string{"team": "payments"}, nil), event.SeverityInfo, true},
		{"selector: every term must match", "include: [{labels: 'team=payments,env!=prod'}]", ev("prod", map[string]string{"team": "payments", "env": "prod"}, nil), event.SeverityInfo, false},
		{"selector !=, label absent", "include: [{labels: 'env!=prod'}]", ev("prod", nil, nil), event.SeverityInfo, true},
		{"selector in", "include: [{labels: 'team in (a, payments)'}]", ev("prod", map[string]string{"team": "payments"}, nil), event.SeverityInfo, true},
		{"selector notin", "include: [{labels: 'team notin (a,payments),tier=web'}]", ev("prod", map[string]string{"team": "payments", "tier": "web"}, nil), event.SeverityInfo, false},
		{"selector exists", "include: [{labels: 'team'}]", ev("prod", map[string]string{"team": "x"}, nil), event.SeverityInfo, true},
		{"selector does not exist", "include: [{labels: '!team'}]", ev("prod", map[string]string{"team": "x"}, nil), event.SeverityInfo, false},
		{"selector regex value", "include: [{labels: 'team=pay.*'}]", ev("prod", map[string]string{"team": "payments"}, nil), event.SeverityInfo, true},
		{"selector regex value anchored", "include: [{labels: 'team=ay.*'}]", ev("prod", map[string]string{"team": "payments"}, nil), event.SeverityInfo, false},
		{"selector negated regex", "include: [{labels: 'team!=pay.*,tier=web'}]", ev("prod", map[string]string{"team": "payments", "tier": "web"}, nil), event.SeverityInfo, false},
		{"selector list: any may match", "include: [{labels: ['team=a', 'tier=web']}]", ev("prod", map[string]string{"team": "b", "tier": "web"}, nil), event.SeverityInfo, true},
		{"selector list: none matches", "include: [{labels: ['team=a', 'tier=db']}]", ev("prod", map[string]string{"team": "b", "tier": "web"}, nil), event.SeverityInfo, false},
		{"annotation selector exclude", "exclude: [{annotations: 'medic/silence=true'}]", ev("prod", nil, map[string]string{"medic/silence": "true"}), event.SeverityInfo, false},
		{"identifier is the alert name", "include: [{identifier: [KubePodCrashLooping, KubeJobFailed]}]", ev("prod", map[string]string{"alertname": "KubeJobFailed"}, nil), event.SeverityInfo, true},
		{"identifier falls back to the kind", "include: [{identifier: pod_crash_loop}]", ev("prod", nil, nil), event.SeverityInfo, true},
		{"title", "exclude: [{title: '.*[Tt]est.*'}]", &event.Event{Title: "Test alert"}, event.SeverityInfo, false},
		{"source", "include: [{source: alertmanager}]", &event.Event{Source: "kubernetes"}, event.SeverityInfo, false},
		{"Robusta rule with several attributes", "include: [{namespace: [prod], labels: 'team=payments', severity: [HIGH]}]", ev("prod", map[string]string{"team": "payments"}, nil), event.SeverityCritical, true},
		{"subject namespace wins over the label", "include: [{namespace: prod}]", ev("dev", map[string]string{"namespace": "prod"}, nil), event.SeverityInfo, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := decode(t, tt.scope)
			if got := s.Match(tt.ev, tt.sev); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNilAndZeroScope(t *testing.T) {
	t.Parallel()
	var nilScope *scope.Scope
	if !nilScope.Match(&event.Event{}, event.SeverityInfo) {
		t.Error("a nil scope must match everything")
	}
	if !nilScope.IsZero() {
		t.Error("a nil scope must be zero")
	}
	s := scope.Scope{Exclude: []scope.Rule{{Namespace: scope.MustPattern("x")}}}
	if s.IsZero() {
		t.Error("a scope with an exclude rule is not zero")
	}
}

func TestScopeDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		doc      string
		wantLine int
		wantMsg  string
	}{
		{"invalid regex", "include:\n  - namespace: prod\n  - severity: 'critical|('\n", 3, `invalid regular expression "critical|("`},
		{"invalid label regex", "include:\n  - labels:\n      team: '[a-'\n", 3, "invalid regular expression"},
		{"pattern not a string", "include:\n  - namespace: {a: b}\n", 2, "expected a regular expression string or a list of them"},
		{"pattern list item not a string", "include:\n  - namespace:\n      - prod\n      - {a: b}\n", 4, "expected a regular expression string"},
		{"invalid regex in a list", "include:\n  - severity: [HIGH, '(']\n", 2, `invalid regular expression "("`},
		{"bad selector", "include:\n  - namespace: prod\n    labels: 'app in (a'\n", 3, `labels: selector "app in (a"`},
		{"bad selector regex", "include:\n  - labels: 'app=(x'\n", 2, `term "app=(x"`},
		{"empty selector term", "exclude:\n  - annotations: 'a=b,,c=d'\n", 2, "annotations: selector \"a=b,,c=d\": empty term"},
		{"bad selector in a list", "include:\n  - labels:\n      - app=api\n      - 'team in (a'\n", 4, `selector "team in (a"`},
		{"labels of the wrong shape", "include:\n  - labels: [[a]]\n", 2, "expected a label selector string"},
		{"unknown rule key", "include:\n  - namespace: prod\n    sevrity: high\n", 3, `unknown parameter "sevrity" (did you mean "severity"?)`},
		{"unknown scope key", "includes: []\n", 1, `unknown parameter "includes" (did you mean "include"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var node yaml.Node
			if err := yaml.Unmarshal([]byte(tt.doc), &node); err != nil {
				t.Fatal(err)
			}
			var s scope.Scope
			err := params.Decode(&node, &s)
			var pe *params.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error = %v (%T), want a *params.Error", err, err)
			}
			if pe.Line != tt.wantLine || !strings.Contains(pe.Msg, tt.wantMsg) {
				t.Errorf("error = %q, want line %d and a message containing %q", err, tt.wantLine, tt.wantMsg)
			}
		})
	}
}

func TestPatternRoundTrip(t *testing.T) {
	t.Parallel()
	s := decode(t, "include:\n  - namespace: prod-.*\n    labels: {team: payments}\n")
	out, err := yaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "namespace: prod-.*") || !strings.Contains(string(out), "team: payments") {
		t.Errorf("marshalled scope lost its patterns:\n%s", out)
	}
	robusta := decode(t, "include:\n  - namespace: [prod, staging]\n    labels: 'app=api,env!=prod'\n")
	out, err = yaml.Marshal(robusta)
	if err != nil {
		t.Fatal(err)
	}
	back := decode(t, string(out))
	ev := &event.Event{Subject: event.Subject{Namespace: "staging"}, Labels: map[string]string{"app": "api"}}
	if !strings.Contains(string(out), "app=api,env!=prod") || !back.Match(ev, event.SeverityInfo) {
		t.Errorf("a Robusta scope did not survive a round trip:\n%s", out)
	}
}
