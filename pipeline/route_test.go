package pipeline

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks"
)

func TestRouteTargets(t *testing.T) {
	t.Parallel()
	specs := specs(t, `
- {name: oncall, type: webhook, url: "http://127.0.0.1:9/a"}
- {name: firing-only, type: webhook, url: "http://127.0.0.1:9/b", send_resolved: false}
- {name: audit, type: webhook, url: "http://127.0.0.1:9/c", default: false}
`)
	tests := []struct {
		name      string
		status    event.Status
		requested []string
		want      []string
		skips     map[string]float64 // by sink, reason resolved
	}{
		{"firing, default sinks", event.StatusFiring, nil, []string{"oncall", "firing-only"}, nil},
		{"resolved: send_resolved false skips, counted", event.StatusResolved, nil, []string{"oncall"},
			map[string]float64{"firing-only": 1}},
		{"the playbook names its sinks", event.StatusFiring, []string{"audit"}, []string{"audit"}, nil},
		{"an unknown sink is logged, not routed", event.StatusFiring, []string{"audit", "nowhere"}, []string{"audit"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			r, err := NewRoute(specs, discard, reg)
			if err != nil {
				t.Fatal(err)
			}
			ev := alert("KubePodCrashLooping", "cart", tt.status, nil)
			f := event.NewFinding(*ev, ev.StartsAt)
			got := r.Targets(f, tt.requested)
			if !slices.Equal(got, tt.want) {
				t.Errorf("targets %v, want %v", got, tt.want)
			}
			for _, s := range []string{"oncall", "firing-only", "audit"} {
				if n := testkit.Metric(t, reg, "medic_sink_skipped_total", "sink", s, "reason", sinks.SkipResolved); n != tt.skips[s] {
					t.Errorf("medic_sink_skipped_total{sink=%s} = %v, want %v", s, n, tt.skips[s])
				}
			}
		})
	}
}
