package alertmanager

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/fixtures"
)

// payloadDir holds real and third-party sample bodies (see its
// ../SOURCES.md for where each came from).
var payloadDir = fixtures.Path("payloads", "alertmanager")

func readPayload(t testing.TB, name string) []byte {
	t.Helper()
	if _, err := os.Stat(payloadDir); err != nil {
		t.Fatalf("payloads: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(payloadDir, name))
	if err != nil {
		t.Fatalf("reading payload: %v", err)
	}
	return b
}

func webhookPayloadFiles(t testing.TB) []string {
	t.Helper()
	if _, err := os.Stat(payloadDir); err != nil {
		t.Fatalf("payloads: %v", err)
	}
	var files []string
	for _, pattern := range []string{"captured-*", "prom2teams__*", "prometheus-msteams__*"} {
		m, err := filepath.Glob(filepath.Join(payloadDir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no webhook payloads found in %s", payloadDir)
	}
	return files
}

type wantAlert struct {
	alertname   string
	status      event.Status
	severity    event.Severity
	subject     event.Subject
	fingerprint string
	title       string
	description string
}

func TestDecodeSharedPayloads(t *testing.T) {
	received := time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC)
	tests := []struct {
		file        string
		externalURL string
		alerts      []wantAlert
	}{
		{
			file:        "captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json",
			externalURL: "http://vm:9093",
			alerts: []wantAlert{{
				alertname: "KubePodCrashLooping", status: event.StatusFiring, severity: event.SeverityCritical,
				subject:     event.Subject{Kind: "Pod", Namespace: "default", Name: "web-1"},
				fingerprint: "41394b6c3cfb0ed6", title: "Pod default/web-1 is crash looping",
			}},
		},
		{
			file:        "captured-alertmanager-v0.34.2__KubePodCrashLooping__resolved.json",
			externalURL: "http://vm:9093",
			alerts: []wantAlert{{
				alertname: "KubePodCrashLooping", status: event.StatusResolved, severity: event.SeverityCritical,
				subject:     event.Subject{Kind: "Pod", Namespace: "default", Name: "web-1"},
				fingerprint: "41394b6c3cfb0ed6", title: "KubePodCrashLooping", // no summary when resolved
			}},
		},
		{
			file:        "captured-alertmanager-v0.34.2__KubeNodeNotReady__firing.json",
			externalURL: "http://vm:9093",
			alerts: []wantAlert{{
				alertname: "KubeNodeNotReady", status: event.StatusFiring, severity: event.SeverityInfo,
				subject:     event.Subject{Kind: "Node", Namespace: "kube-system", Name: "n1", Node: "n1"},
				fingerprint: "b94b3268bdc139e8", title: "node n1 not ready",
			}},
		},
		{
			file:        "prom2teams__all_ok_multiple.json",
			externalURL: "my.prometheusalertmanager.url",
			alerts: []wantAlert{
				{
					alertname: "DiskSpace", status: event.StatusResolved, severity: event.SeverityHigh, // "severe"
					subject:     event.Subject{Name: "cs30.evilcorp"},
					fingerprint: "dd19ae3d4e06ac55", title: "Disk usage alert on CS30.evilcorp",
					description: "disk usage 93% on rootfs device",
				},
				{
					alertname: "DiskSpace", status: event.StatusResolved, severity: event.SeverityCritical,
					subject:     event.Subject{Name: "cs31.evilcorp"},
					fingerprint: "dd19ae3d4e06ac55", title: "Disk usage alert on CS31.evilcorp",
					description: "disk usage 94% on rootfs device",
				},
			},
		},
		{
			file:        "prom2teams__with_common_items.json",
			externalURL: "http://ot-mon-prometheus-operator-alertmanager.monitoring:9093",
			alerts: []wantAlert{{
				alertname: "CPUThrottlingHigh", status: event.StatusResolved, severity: event.SeverityWarning,
				// pod_name/container_name: cAdvisor's label names before Kubernetes 1.16.
				subject: event.Subject{Kind: "Pod", Namespace: "monitoring",
					Name: "alertmanager-ot-mon-prometheus-operator-alertmanager-0", Container: "config-reloader"},
				fingerprint: "dd19ae3d4e06ac55", title: "CPU throttling",
				description: "27% throttling of CPU in namespace monitoring for container config-reloader in pod alertmanager-ot-mon-prometheus-operator-alertmanager-0.",
			}},
		},
		{
			// No per-alert status and no fingerprint: status comes from the
			// message, the fingerprint from the labels.
			file:        "prometheus-msteams__prom_post_request.json",
			externalURL: "http://docker.for.mac.host.internal:9093",
			alerts: []wantAlert{{
				alertname: "high_memory_load", status: event.StatusFiring, severity: event.SeverityWarning,
				subject:     event.Subject{Name: "instance-with-hyphen_and_underscore"},
				fingerprint: "b29784719d6a11e6", title: "Server High Memory usage",
				description: "10.80.40.11 reported high memory usage with 23.28%.",
			}},
		},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			msg, err := Decode(readPayload(t, tt.file))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			events := ToEvents(msg, DefaultSource, received)
			if len(events) != len(tt.alerts) {
				t.Fatalf("got %d events, want %d", len(events), len(tt.alerts))
			}
			for i, want := range tt.alerts {
				ev := events[i]
				a := msg.Alerts[i]
				if ev.Kind != event.KindPrometheusAlert || ev.Source != DefaultSource {
					t.Errorf("[%d] kind/source = %s/%s", i, ev.Kind, ev.Source)
				}
				if got := ev.Label("alertname"); got != want.alertname {
					t.Errorf("[%d] alertname = %q, want %q", i, got, want.alertname)
				}
				if ev.Status != want.status {
					t.Errorf("[%d] status = %q, want %q", i, ev.Status, want.status)
				}
				if ev.Severity != want.severity {
					t.Errorf("[%d] severity = %q, want %q", i, ev.Severity, want.severity)
				}
				if ev.Subject != want.subject {
					t.Errorf("[%d] subject = %+v, want %+v", i, ev.Subject, want.subject)
				}
				if ev.Fingerprint != want.fingerprint {
					t.Errorf("[%d] fingerprint = %q, want %q", i, ev.Fingerprint, want.fingerprint)
				}
				if ev.Title != want.title {
					t.Errorf("[%d] title = %q, want %q", i, ev.Title, want.title)
				}
				if ev.Description != want.description {
					t.Errorf("[%d] description = %q, want %q", i, ev.Description, want.description)
				}
				if ev.ExternalURL != tt.externalURL {
					t.Errorf("[%d] externalURL = %q, want %q", i, ev.ExternalURL, tt.externalURL)
				}
				if !ev.StartsAt.Equal(a.StartsAt) || !ev.EndsAt.Equal(a.EndsAt) || ev.GeneratorURL != a.GeneratorURL {
					t.Errorf("[%d] times/generatorURL not copied: %v %v %q", i, ev.StartsAt, ev.EndsAt, ev.GeneratorURL)
				}
				if !ev.ReceivedAt.Equal(received) {
					t.Errorf("[%d] receivedAt = %v", i, ev.ReceivedAt)
				}
				// IDs are keyed on the labels' fingerprint, which equals the
				// payload's for real Alertmanager (see TestFingerprintMatchesAlertmanager).
				if wantID := event.NewID(DefaultSource, Fingerprint(a.Labels), want.status, a.StartsAt); ev.ID != wantID {
					t.Errorf("[%d] ID = %q, want %q", i, ev.ID, wantID)
				}
				// The alert's fields are all in the event; it is not carried twice.
				if len(ev.Raw) != 0 || ev.Labels["alertname"] != want.alertname {
					t.Errorf("[%d] raw = %s, alertname %q", i, ev.Raw, ev.Labels["alertname"])
				}
			}
		})
	}
	// prom2teams' sample gives two different alerts one hand-written
	// fingerprint and the same start; both must survive deduplication.
	t.Run("distinct alerts sharing a fingerprint keep distinct IDs", func(t *testing.T) {
		msg, err := Decode(readPayload(t, "prom2teams__all_ok_multiple.json"))
		if err != nil {
			t.Fatal(err)
		}
		evs := ToEvents(msg, DefaultSource, received)
		if evs[0].Fingerprint != evs[1].Fingerprint || evs[0].ID == evs[1].ID {
			t.Fatalf("fingerprints %s/%s, IDs %s/%s", evs[0].Fingerprint, evs[1].Fingerprint, evs[0].ID, evs[1].ID)
		}
	})
	// A payload added to the folder later must at least decode.
	for _, f := range webhookPayloadFiles(t) {
		name := filepath.Base(f)
		if covered[name] {
			continue
		}
		t.Run(name, func(t *testing.T) {
			msg, err := Decode(readPayload(t, name))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if n := len(ToEvents(msg, DefaultSource, received)); n != len(msg.Alerts) {
				t.Fatalf("%d events for %d alerts", n, len(msg.Alerts))
			}
		})
	}
}

// Real Alertmanager fingerprints are the label set's fingerprint, which is
// what Fingerprint computes for senders that leave it out.
func TestFingerprintMatchesAlertmanager(t *testing.T) {
	msg, err := Decode(readPayload(t, "captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json"))
	if err != nil {
		t.Fatal(err)
	}
	a := msg.Alerts[0]
	if got := Fingerprint(a.Labels); got != a.Fingerprint {
		t.Fatalf("Fingerprint(labels) = %s, Alertmanager sent %s", got, a.Fingerprint)
	}
}

// Fingerprint hashes the plain map; it must agree with LabelSet.Fingerprint,
// which Alertmanager uses, for any label set.
func TestFingerprintMatchesLabelSet(t *testing.T) {
	for _, labels := range []template.KV{
		nil,
		{},
		{"alertname": "Watchdog"},
		{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-7d9", "severity": "warning"},
		{"": "", "a": "", "b\xff": "\x00"},
		manyLabels(20), // more than Fingerprint sorts on the stack
	} {
		ls := make(model.LabelSet, len(labels))
		for k, v := range labels {
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
		if got, want := Fingerprint(labels), ls.Fingerprint().String(); got != want {
			t.Errorf("Fingerprint(%v) = %s, LabelSet.Fingerprint = %s", labels, got, want)
		}
	}
}

func manyLabels(n int) template.KV {
	kv := template.KV{}
	for i := range n {
		kv[fmt.Sprintf("label_%02d", n-i)] = fmt.Sprintf("value %d", i)
	}
	return kv
}

func FuzzFingerprint(f *testing.F) {
	f.Add("alertname", "KubePodCrashLooping", "namespace", "shop", 3)
	f.Add("", "", "\xff", "\x00", 0)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, extra int) {
		labels := template.KV{k1: v1, k2: v2}
		for i := range extra % 24 {
			labels[fmt.Sprint(k1, i)] = v2
		}
		ls := make(model.LabelSet, len(labels))
		for k, v := range labels {
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
		if got, want := Fingerprint(labels), ls.Fingerprint().String(); got != want {
			t.Fatalf("Fingerprint(%q) = %s, LabelSet.Fingerprint = %s", labels, got, want)
		}
	})
}

func TestHolmesPayloadsAreRejected(t *testing.T) {
	if _, err := os.Stat(payloadDir); err != nil {
		t.Fatalf("payloads: %v", err)
	}
	files, err := filepath.Glob(filepath.Join(payloadDir, "holmesgpt__*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no holmesgpt payloads: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Decode(readPayload(t, filepath.Base(f)))
			if !errors.Is(err, ErrNotWebhook) {
				t.Fatalf("err = %v, want ErrNotWebhook", err)
			}
			for _, want := range []string{`"version" is missing`, `"alerts" is missing`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %s", err, want)
				}
			}
		})
	}
}

const okAlert = `{"status":"firing","labels":{"alertname":"A"},"startsAt":"2026-01-02T03:04:05Z"}`

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		body string
		kind error
		want string
	}{
		{"empty", "  \n", ErrMalformed, "the body is empty"},
		{"not json", "hello", ErrMalformed, "line 1, column 1"},
		{"syntax error on line 3", "{\n  \"version\": \"4\",\n  \"alerts\": [,]\n}", ErrMalformed, "line 3, column 14"},
		{"cut off", `{"version":"4","alerts":[`, ErrMalformed, "was it cut off?"},
		{"trailing garbage", `{"version":"4","alerts":[` + okAlert + `]} trailing`, ErrMalformed, "unexpected data after the JSON object at line 1"},
		{"two objects", `{"version":"4","alerts":[` + okAlert + "]}\n{}", ErrMalformed, "unexpected data after the JSON object at line 2, column 1"},
		{"array", `[1,2]`, ErrNotWebhook, "the body is a JSON array, not an object"},
		{"string", `"x"`, ErrNotWebhook, "the body is a JSON string, not an object"},
		{"null", `null`, ErrNotWebhook, "the body is JSON null, not an object"},
		{"empty object", `{}`, ErrNotWebhook, `"version" is missing (Alertmanager sends "4"); "alerts" is missing`},
		{"old version", `{"version":"3","alerts":[` + okAlert + `]}`, ErrNotWebhook, `version "3" is not supported (expected "4")`},
		{"version as number", `{"version":4,"alerts":[` + okAlert + `]}`, ErrNotWebhook, "version: expected a string, got a JSON number"},
		{"no alerts", `{"version":"4"}`, ErrNotWebhook, `"alerts" is missing`},
		{"null alerts", `{"version":"4","alerts":null}`, ErrNotWebhook, `"alerts" is missing`},
		{"empty alerts", `{"version":"4","alerts":[]}`, ErrNotWebhook, `"alerts" is empty`},
		{"alerts not array", `{"version":"4","alerts":"x"}`, ErrNotWebhook, "alerts: expected an array, got a JSON string"},
		{"bad status", `{"version":"4","alerts":[` + okAlert + `,` + okAlert + `,` + okAlert + `,{"status":"foo","labels":{"a":"b"}}]}`, ErrNotWebhook,
			`alerts[3]: status "foo" is not firing or resolved`},
		{"no status anywhere", `{"version":"4","alerts":[{"labels":{"a":"b"}}]}`, ErrNotWebhook, `alerts[0]: "status" is missing and the message has none either`},
		{"no labels", `{"version":"4","alerts":[{"status":"firing"}]}`, ErrNotWebhook, "alerts[0]: the alert has no labels"},
		{"empty labels", `{"version":"4","alerts":[{"status":"firing","labels":{}}]}`, ErrNotWebhook, "alerts[0]: the alert has no labels"},
		{"null alert", `{"version":"4","alerts":[null]}`, ErrNotWebhook, "alerts[0]"},
		{"labels not object", `{"version":"4","alerts":[{"status":"firing","labels":"a=b"}]}`, ErrNotWebhook, "alerts[0]: labels: expected an object, got a JSON string"},
		{"label value not string", `{"version":"4","alerts":[{"status":"firing","labels":{"a":1}}]}`, ErrNotWebhook, "alerts[0]: labels: expected a string, got a JSON number"},
		{"bad startsAt", `{"version":"4","alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"yesterday"}]}`, ErrNotWebhook, `alerts[0]: startsAt: "yesterday" is not an RFC 3339 time`},
		{"alert not object", `{"version":"4","alerts":[1]}`, ErrNotWebhook, "alerts[0]: expected an object, got a JSON number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := Decode([]byte(tt.body))
			if err == nil {
				t.Fatalf("accepted: %+v", msg)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("err = %v, want it to wrap %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDecodeAlertInheritsMessageStatus(t *testing.T) {
	msg, err := Decode([]byte(`{"version":"4","status":"resolved","alerts":[{"labels":{"alertname":"A"}},{"status":"firing","labels":{"alertname":"B"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Alerts[0].Status != "resolved" || msg.Alerts[1].Status != "firing" {
		t.Fatalf("statuses = %q, %q", msg.Alerts[0].Status, msg.Alerts[1].Status)
	}
}

func TestIDs(t *testing.T) {
	firing := readPayload(t, "captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json")
	resolved := readPayload(t, "captured-alertmanager-v0.34.2__KubePodCrashLooping__resolved.json")
	ids := func(body []byte, receivedAt time.Time) string {
		t.Helper()
		msg, err := Decode(body)
		if err != nil {
			t.Fatal(err)
		}
		return ToEvents(msg, DefaultSource, receivedAt)[0].ID
	}
	t1 := time.Date(2026, 11, 22, 10, 48, 0, 0, time.UTC)
	first, retried := ids(firing, t1), ids(firing, t1.Add(time.Minute))
	if first == "" || first != retried {
		t.Errorf("the same alert twice gave IDs %q and %q", first, retried)
	}
	if res := ids(resolved, t1); res == first {
		t.Errorf("firing and resolved share ID %q", res)
	}
	// Another source (a second medic that is not a replica) is another event.
	msg, _ := Decode(firing)
	if other := ToEvents(msg, "other", t1)[0].ID; other == first {
		t.Error("source is not part of the ID")
	}
}

func TestSubjectFromLabels(t *testing.T) {
	tests := []struct {
		labels map[string]string
		want   event.Subject
	}{
		{map[string]string{"namespace": "shop", "pod": "cart-1", "container": "app", "node": "n1", "deployment": "cart"},
			event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart-1", Container: "app", Node: "n1"}},
		{map[string]string{"namespace": "shop", "deployment": "cart", "instance": "10.0.0.1:8080"},
			event.Subject{Kind: "Deployment", Namespace: "shop", Name: "cart"}},
		{map[string]string{"namespace": "db", "statefulset": "pg"}, event.Subject{Kind: "StatefulSet", Namespace: "db", Name: "pg"}},
		{map[string]string{"namespace": "kube-system", "daemonset": "cilium"}, event.Subject{Kind: "DaemonSet", Namespace: "kube-system", Name: "cilium"}},
		{map[string]string{"namespace": "batch", "job_name": "backup-123", "job": "kube-state-metrics"}, event.Subject{Kind: "Job", Namespace: "batch", Name: "backup-123"}},
		{map[string]string{"node": "n2", "instance": "n2:9100"}, event.Subject{Kind: "Node", Name: "n2", Node: "n2"}},
		{map[string]string{"instance": "db1:9100", "job": "node"}, event.Subject{Name: "db1:9100"}},
		{map[string]string{"alertname": "Watchdog"}, event.Subject{}},
	}
	for _, tt := range tests {
		if got := SubjectFromLabels(tt.labels); got != tt.want {
			t.Errorf("SubjectFromLabels(%v) = %+v, want %+v", tt.labels, got, tt.want)
		}
	}
}
