package playtest

import (
	"strings"
	"testing"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/sinks"
	"go.yaml.in/yaml/v3"
)

func TestDecodeEvents(t *testing.T) {
	// An Alertmanager message without "version", in YAML.
	evs, err := DecodeEvents([]byte("alerts:\n  - status: firing\n    labels: {alertname: X, namespace: shop, pod: p}\n"), nil)
	if err != nil || len(evs) != 1 || evs[0].Kind != event.KindPrometheusAlert || evs[0].Subject.Name != "p" {
		t.Fatalf("alertmanager: %v %+v", err, evs)
	}
	// A list of medic events.
	evs, err = DecodeEvents([]byte(`[{"kind":"pod_crash_loop","subject":{"kind":"Pod","namespace":"a","name":"b"}},{"kind":"job_failure","status":"resolved"}]`), nil)
	if err != nil || len(evs) != 2 || evs[0].Status != event.StatusFiring || evs[1].Status != event.StatusResolved || evs[0].ID == "" {
		t.Fatalf("medic events: %v %+v", err, evs)
	}
	for doc, want := range map[string]string{
		`{"apiVersion":"v1","kind":"Pod"}`:  "a Kubernetes object (kind Pod) is converted for the triggers of a playbook set",
		`{"hello":"world"}`:                 "unknown event format",
		`{"alerts":[]}`:                     `"alerts" is empty`,
		`"just a string"`:                   "an object or a list",
		`{"kind":"x","labels":"not a map"}`: "not a medic event",
	} {
		if _, err := DecodeEvents([]byte(doc), nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: want %q, got %v", doc, want, err)
		}
	}
}

func TestRunFollowsStopAndRouting(t *testing.T) {
	set, err := playbooks.Build([]playbooks.File{{Path: "a.yaml", Data: []byte(`
- name: first
  triggers: [{on_prometheus_alert: {alert_name: X}}]
  actions: [default_enricher]
  sinks: [pager]
  stop: true
- name: never
  triggers: [on_prometheus_alert]
  actions: [default_enricher]
`)}}, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	var specs []sinks.Spec
	if err := yaml.Unmarshal([]byte("- {name: pager, type: stdout, default: false, scope: {include: [{severity: critical}]}}\n- {name: all, type: stdout}\n"), &specs); err != nil {
		t.Fatal(err)
	}
	ev, _ := Alert{Labels: map[string]string{"alertname": "X", "severity": "critical"}}.Event()
	r := Run(set, &ev, specs)
	if strings.Join(r.PlaybookNames(), ",") != "first" || strings.Join(r.Sinks, ",") != "pager" || strings.Join(r.Actions, ",") != "first/default_enricher" {
		t.Fatalf("report %+v", r)
	}
	ev, _ = Alert{Labels: map[string]string{"alertname": "X", "severity": "warning"}}.Event()
	if r := Run(set, &ev, specs); len(r.Sinks) != 0 || !strings.Contains(r.Text(), "scope refuses it") {
		t.Fatalf("a warning reached the critical-only pager: %+v", r)
	}
}
