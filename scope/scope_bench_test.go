package scope_test

import (
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/params"
	"github.com/medichq/medic/scope"
)

// benchScope has three include rules and two exclude rules over namespace,
// severity, labels and annotations, as a sink or trigger scope might.
const benchScope = `
include:
  - namespace: prod-.*
    severity: critical|high
  - labels: {team: payments|checkout, env: prod}
  - namespace: shop|cart
    labels: {tier: web}
exclude:
  - annotations: {medic/silence: "true"}
  - labels: {alertname: Watchdog|InfoInhibitor}
`

func benchEvent(ns string) *event.Event {
	return &event.Event{
		Kind:     event.KindPrometheusAlert,
		Severity: event.SeverityWarning,
		Subject:  event.Subject{Kind: "Pod", Namespace: ns, Name: "cart-7d9"},
		Labels: map[string]string{
			"alertname": "KubePodCrashLooping", "namespace": ns, "pod": "cart-7d9", "tier": "web",
			"team": "storefront", "env": "prod", "severity": "warning",
		},
		Annotations: map[string]string{"summary": "crash looping", "runbook_url": "https://runbooks/x"},
	}
}

// BenchmarkScopeMatch evaluates the scope against an alert: "included"
// passes both excludes and matches the third include rule (every rule is
// tried), "not-included" matches none.
func BenchmarkScopeMatch(b *testing.B) {
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(benchScope), &node); err != nil {
		b.Fatal(err)
	}
	var s scope.Scope
	if err := params.Decode(&node, &s); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ev   *event.Event
		want bool
	}{
		{"included", benchEvent("shop"), true},
		{"not-included", benchEvent("staging"), false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if got := s.Match(tc.ev, tc.ev.Severity); got != tc.want {
				b.Fatalf("Match = %v, want %v", got, tc.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.Match(tc.ev, tc.ev.Severity)
			}
		})
	}
}
