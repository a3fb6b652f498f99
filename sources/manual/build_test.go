package manual

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/fixtures"
	"github.com/medichq/medic/sources/alertmanager"
)

var now = time.Date(2026, 11, 22, 10, 50, 0, 123, time.UTC)

func TestBuildAlert(t *testing.T) {
	tests := []struct {
		name        string
		params      map[string]string
		labels      map[string]string
		annotations map[string]string
		status      event.Status
		severity    event.Severity
		subject     event.Subject
		startsAt    time.Time
		endsAt      time.Time
		title       string
	}{
		{
			name:     "minimal",
			params:   map[string]string{"alert_name": "Test"},
			labels:   map[string]string{"alertname": "Test", "severity": "warning"},
			status:   event.StatusFiring,
			severity: event.SeverityWarning,
			startsAt: now,
			title:    "Test",
		},
		{
			name: "pod alert with everything",
			params: map[string]string{
				"alert_name": "KubePodCrashLooping", "namespace": "shop", "pod_name": "cart-1", "node_name": "n1",
				"container": "app", "deployment": "cart", "instance": "10.0.0.1:8080", "severity": "critical",
				"summary": "cart is crash looping", "description": "restarted 5 times", "runbook_url": "https://rb/x",
				"label.team": "payments", "annotation.dashboard": "https://grafana/d/x",
			},
			labels: map[string]string{
				"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-1", "node": "n1",
				"container": "app", "deployment": "cart", "instance": "10.0.0.1:8080", "severity": "critical", "team": "payments",
			},
			annotations: map[string]string{
				"summary": "cart is crash looping", "description": "restarted 5 times", "runbook_url": "https://rb/x",
				"dashboard": "https://grafana/d/x",
			},
			status:   event.StatusFiring,
			severity: event.SeverityCritical,
			subject:  event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart-1", Container: "app", Node: "n1"},
			startsAt: now,
			title:    "cart is crash looping",
		},
		{
			name:     "job",
			params:   map[string]string{"alert_name": "KubeJobFailed", "namespace": "batch", "job_name": "backup-1"},
			labels:   map[string]string{"alertname": "KubeJobFailed", "namespace": "batch", "job_name": "backup-1", "severity": "warning"},
			status:   event.StatusFiring,
			severity: event.SeverityWarning,
			subject:  event.Subject{Kind: "Job", Namespace: "batch", Name: "backup-1"},
			startsAt: now,
			title:    "KubeJobFailed",
		},
		{
			name: "resolved with start time",
			params: map[string]string{"alert_name": "X", "status": "resolved", "starts_at": "2026-11-22T10:00:00+01:00",
				"statefulset": "pg", "daemonset": "", "severity": "info"},
			labels:   map[string]string{"alertname": "X", "statefulset": "pg", "severity": "info"},
			status:   event.StatusResolved,
			severity: event.SeverityInfo,
			subject:  event.Subject{Kind: "StatefulSet", Name: "pg"},
			startsAt: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC),
			endsAt:   now,
			title:    "X",
		},
		{
			name:     "empty severity takes the default",
			params:   map[string]string{"alert_name": "X", "severity": "", "label.extra": "1"},
			labels:   map[string]string{"alertname": "X", "severity": "warning", "extra": "1"},
			status:   event.StatusFiring,
			severity: event.SeverityWarning,
			startsAt: now,
			title:    "X",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := BuildAlert(tt.params, now)
			if err != nil {
				t.Fatalf("BuildAlert: %v", err)
			}
			if ev.Kind != event.KindPrometheusAlert || ev.Source != Source {
				t.Errorf("kind/source = %s/%s", ev.Kind, ev.Source)
			}
			if !maps.Equal(ev.Labels, tt.labels) {
				t.Errorf("labels = %v, want %v", ev.Labels, tt.labels)
			}
			if !maps.Equal(ev.Annotations, tt.annotations) {
				t.Errorf("annotations = %v, want %v", ev.Annotations, tt.annotations)
			}
			if ev.Status != tt.status || ev.Severity != tt.severity || ev.Subject != tt.subject || ev.Title != tt.title {
				t.Errorf("status/severity/subject/title = %s/%s/%+v/%q", ev.Status, ev.Severity, ev.Subject, ev.Title)
			}
			if !ev.StartsAt.Equal(tt.startsAt) || !ev.EndsAt.Equal(tt.endsAt) {
				t.Errorf("startsAt/endsAt = %v/%v, want %v/%v", ev.StartsAt, ev.EndsAt, tt.startsAt, tt.endsAt)
			}
			if want := alertmanager.Fingerprint(tt.labels); ev.Fingerprint != want {
				t.Errorf("fingerprint = %s, want %s", ev.Fingerprint, want)
			}
			if want := event.NewID(Source, ev.Fingerprint, tt.status, tt.startsAt); ev.ID != want {
				t.Errorf("ID = %s, want %s", ev.ID, want)
			}
			if len(ev.Raw) != 0 {
				t.Errorf("raw = %s; alerts carry no raw copy", ev.Raw)
			}
		})
	}
}

func TestBuildAlertErrors(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		want   []string
	}{
		{"no alert name", map[string]string{"namespace": "x"}, []string{"alert_name is required"}},
		{"unknown parameter", map[string]string{"alert_name": "X", "pod": "p"},
			[]string{`unknown parameter "pod"`, "alert_name", "pod_name", "node_name", "starts_at", "label.<name>", "annotation.<name>"}},
		{"bad status", map[string]string{"alert_name": "X", "status": "open"}, []string{`status "open" is not firing or resolved`}},
		{"bad start", map[string]string{"alert_name": "X", "starts_at": "yesterday"}, []string{`starts_at "yesterday" is not an RFC 3339 time`}},
		{"resolved before it started", map[string]string{"alert_name": "X", "status": "resolved", "starts_at": "2030-01-01T00:00:00Z"},
			[]string{"after now"}},
		{"label set twice", map[string]string{"alert_name": "X", "pod_name": "a", "label.pod": "b"},
			[]string{`label.pod and pod_name both set the label "pod"`}},
		{"empty label prefix", map[string]string{"alert_name": "X", "label.": "b"}, []string{`unknown parameter "label."`}},
		{"several problems at once", map[string]string{"status": "x", "foo": "y"},
			[]string{"alert_name is required", `unknown parameter "foo"`, `status "x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := BuildAlert(tt.params, now)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// The point of the manual trigger: the event must look to playbooks like
// the one Alertmanager's webhook produces for the same alert.
func TestBuildAlertLooksLikeTheWebhook(t *testing.T) {
	body := fixtures.Read(t, "payloads", "alertmanager", "captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json")
	msg, err := alertmanager.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	real := alertmanager.ToEvents(msg, alertmanager.DefaultSource, now)[0]
	manual, err := BuildAlert(map[string]string{
		"alert_name": "KubePodCrashLooping", "namespace": "default", "pod_name": "web-1", "severity": "critical",
		"summary": "Pod default/web-1 is crash looping", "starts_at": msg.Alerts[0].StartsAt.Format(time.RFC3339Nano),
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	// What differs by design: where it came from (and so the ID), and the
	// URLs only a real Prometheus and Alertmanager have.
	for _, ev := range []*event.Event{&real, &manual} {
		ev.ID, ev.Source, ev.ExternalURL, ev.GeneratorURL, ev.Raw = "", "", "", "", nil
	}
	a, _ := json.Marshal(real)
	b, _ := json.Marshal(manual)
	if string(a) != string(b) {
		t.Errorf("manual event differs from the webhook's:\nwebhook: %s\nmanual:  %s", a, b)
	}
}

func TestBuildUnknownTrigger(t *testing.T) {
	_, err := Build("pod_crash_loop", nil, now)
	if err == nil || !strings.Contains(err.Error(), `unknown trigger "pod_crash_loop" (known: prometheus_alert)`) {
		t.Fatalf("err = %v", err)
	}
}
