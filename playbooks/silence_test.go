package playbooks

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/medichq/medic/event"
)

// A silencer stops the playbooks where it runs, as Robusta's
// stop_processing does: later actions and later playbooks do not run, the
// finding says who silenced it and why, and the counter has it by playbook
// and silencer. An event the silencer does not match runs everything.
func TestSilencersStopThePlaybooks(t *testing.T) {
	t.Parallel()
	set := mustBuild(t, map[string]string{"pb.yaml": `
- name: noise
  triggers: [on_prometheus_alert]
  actions:
    - name_silencer: {names: [Watchdog, InfoInhibitor]}
    - severity_silencer: {severity: info}
    - severity_silencer: {severities: [LOW, none]}
    - template_enricher: {template: after the silencers}
- name: maintenance
  triggers:
    - on_prometheus_alert: {alert_name: NodeRebooting}
  actions:
    - silence_alert: {log_silence: true}
- name: evidence
  triggers: [on_prometheus_alert]
  actions:
    - template_enricher: {template: second playbook}
`})
	tests := []struct {
		name     string
		ev       *event.Event
		by       string // "" = not silenced
		reason   string
		enriched int
		ran      string // the playbooks that ran
	}{
		{"Watchdog by name", alert("Watchdog", event.StatusFiring, map[string]string{"severity": "none"}),
			"name_silencer in playbook noise", "alert Watchdog is in names", 0, "noise"},
		{"info by severity", alert("CPUThrottlingHigh", event.StatusFiring, map[string]string{"severity": "info"}),
			"severity_silencer in playbook noise", "severity is info", 0, "noise"},
		{"Robusta's LOW, any case", alert("Custom", event.StatusFiring, map[string]string{"severity": "low"}),
			"severity_silencer in playbook noise", "severity is low", 0, "noise"},
		{"silence_alert silences what its playbook matches", alert("NodeRebooting", event.StatusFiring, map[string]string{"severity": "warning"}),
			"silence_alert in playbook maintenance", "the playbook silences what it matches", 1, "noise,maintenance"},
		{"a warning is delivered with every enrichment", alert("KubePodCrashLooping", event.StatusFiring, map[string]string{"severity": "warning"}),
			"", "", 2, "noise,evidence"},
		{"a name that only starts like one in names is delivered", alert("WatchdogX", event.StatusFiring, map[string]string{"severity": "critical"}),
			"", "", 2, "noise,evidence"},
	}
	e := newEngine(t, set)
	for _, tt := range tests {
		res, err := e.Run(context.Background(), tt.ev)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		f := res.Finding
		switch {
		case tt.by == "" && f.Silenced != nil:
			t.Errorf("%s: silenced by %+v", tt.name, f.Silenced)
		case tt.by != "" && (f.Silenced == nil || f.Silenced.By != tt.by || f.Silenced.Reason != tt.reason):
			t.Errorf("%s: silenced = %+v, want by %q reason %q", tt.name, f.Silenced, tt.by, tt.reason)
		}
		if len(f.Enrichments) != tt.enriched {
			t.Errorf("%s: %d enrichments, want %d (actions after the silencer ran?)", tt.name, len(f.Enrichments), tt.enriched)
		}
		if got := strings.Join(f.Playbooks, ","); got != tt.ran {
			t.Errorf("%s: playbooks ran %s, want %s", tt.name, got, tt.ran)
		}
	}
	if got := testutil.ToFloat64(e.silenced.WithLabelValues("noise", "name_silencer")); got != 1 {
		t.Errorf("medic_findings_silenced_total{noise,name_silencer} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(e.silenced.WithLabelValues("noise", "severity_silencer")); got != 2 {
		t.Errorf("medic_findings_silenced_total{noise,severity_silencer} = %v, want 2", got)
	}
}

func TestSilencerParamsAreChecked(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ yaml, want string }{
		{"name_silencer: {}", "names is empty"},
		{"severity_silencer: {severities: ['']}", "severities[0] is empty"},
		{"severity_silencer: {level: info}", `unknown parameter "level"`},
	} {
		_, err := build(t, map[string]string{"pb.yaml": "- name: x\n  triggers: [on_prometheus_alert]\n  actions:\n    - " + tt.yaml + "\n"}, Options{Plugins: testPlugins})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want %q", tt.yaml, err, tt.want)
		}
	}
	// Robusta's defaults: severity_silencer without parameters silences "none".
	set := mustBuild(t, map[string]string{"pb.yaml": "- name: x\n  triggers: [on_prometheus_alert]\n  actions: [severity_silencer]\n"})
	res, err := newEngine(t, set).Run(context.Background(), alert("A", event.StatusFiring, map[string]string{"severity": "none"}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Finding.Silenced == nil {
		t.Error("severity_silencer without parameters did not silence severity none")
	}
}
