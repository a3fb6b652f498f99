package prometheus_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sources/alertmanager"
	"github.com/medichq/medic/triggers"
	"github.com/medichq/medic/triggers/prometheus"
)

func buildTrigger(t *testing.T, src string) (triggers.Trigger, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("test YAML: %v", err)
	}
	return registered.Build(prometheus.TriggerName, &doc)
}

// registered is a registry with this package's trigger, the one the tests
// build it from.
var registered = triggers.NewRegistry(prometheus.Register)

func alertEvent(status event.Status, labels, annotations map[string]string) *event.Event {
	ev := alertmanager.EventFromAlert(alertOf(string(status), labels, annotations), "", alertmanager.DefaultSource, time.Unix(0, 0))
	return &ev
}

func alertOf(status string, labels, annotations map[string]string) (a template.Alert) {
	a.Status, a.Labels, a.Annotations = status, labels, annotations
	a.StartsAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return a
}

func TestOnPrometheusAlertIsRegistered(t *testing.T) {
	if !slices.Contains(registered.Names(), prometheus.TriggerName) {
		t.Fatalf("%s not registered: %v", prometheus.TriggerName, registered.Names())
	}
	tr, err := buildTrigger(t, "{}")
	if err != nil {
		t.Fatal(err)
	}
	if k := tr.Kinds(); len(k) != 1 || k[0] != event.KindPrometheusAlert {
		t.Errorf("Kinds() = %v", k)
	}
}

func TestOnPrometheusAlertMatch(t *testing.T) {
	crash := alertEvent(event.StatusFiring, map[string]string{
		"alertname": "KubePodCrashLooping", "namespace": "prod-eu", "pod": "cart-7d9", "container": "app",
		"instance": "10.0.0.7:8080", "team": "payments", "env": "prod", "severity": "critical",
	}, map[string]string{"summary": "crash looping", "runbook_url": "https://runbooks/x"})
	crashResolved := alertEvent(event.StatusResolved, crash.Labels, nil)
	node := alertEvent(event.StatusFiring, map[string]string{"alertname": "KubeNodeNotReady", "node": "worker-3"}, nil)
	deploy := alertEvent(event.StatusFiring, map[string]string{
		"alertname": "KubeDeploymentReplicasMismatch", "namespace": "staging", "deployment": "api", "env": "dev",
	}, map[string]string{"silenced_by": "bob"})
	notAlert := &event.Event{Kind: event.KindPodCrashLoop, Status: event.StatusFiring,
		Labels: map[string]string{"alertname": "KubePodCrashLooping"}}

	tests := []struct {
		name  string
		yaml  string
		match []*event.Event
		miss  []*event.Event
	}{
		{"defaults: every firing alert", `{}`, []*event.Event{crash, node, deploy}, []*event.Event{crashResolved, notAlert}},
		{"null params", ``, []*event.Event{crash}, []*event.Event{crashResolved}},
		{"alert name", `alert_name: KubePodCrashLooping`, []*event.Event{crash}, []*event.Event{node, crashResolved, notAlert}},
		{"alert name is exact", `alert_name: KubePod`, nil, []*event.Event{crash}},
		{"resolved", `{alert_name: KubePodCrashLooping, status: resolved}`, []*event.Event{crashResolved}, []*event.Event{crash}},
		{"all", `status: all`, []*event.Event{crash, crashResolved, node}, []*event.Event{notAlert}},
		{"namespace prefix", `namespace_prefix: prod-`, []*event.Event{crash}, []*event.Event{deploy, node}},
		{"pod name prefix", `pod_name_prefix: cart-`, []*event.Event{crash}, []*event.Event{deploy, node}},
		{"instance prefix", `instance_name_prefix: "10.0."`, []*event.Event{crash}, []*event.Event{node}},
		{"subject name prefix", `name_prefix: work`, []*event.Event{node}, []*event.Event{crash, deploy}},
		{"subject name prefix on deployment", `name_prefix: ap`, []*event.Event{deploy}, []*event.Event{crash}},
		{"selector equality", `labels_selector: "team=payments,env=prod"`, []*event.Event{crash}, []*event.Event{deploy, node}},
		{"selector double equals", `labels_selector: "team==payments"`, []*event.Event{crash}, []*event.Event{deploy}},
		{"selector not equals matches absent", `labels_selector: "env!=dev"`, []*event.Event{crash, node}, []*event.Event{deploy}},
		{"selector exists", `labels_selector: deployment`, []*event.Event{deploy}, []*event.Event{crash, node}},
		{"selector not exists", `labels_selector: "!namespace"`, []*event.Event{node}, []*event.Event{crash, deploy}},
		{"selector with spaces", `labels_selector: " team = payments , !deployment "`, []*event.Event{crash}, []*event.Event{deploy}},
		{"scope include by label", "scope:\n  include:\n    - labels: {team: pay.*}", []*event.Event{crash}, []*event.Event{deploy, node}},
		{"scope exclude by annotation", "scope:\n  exclude:\n    - annotations: {silenced_by: .+}", []*event.Event{crash, node}, []*event.Event{deploy}},
		{"scope severity", "scope:\n  include:\n    - severity: critical", []*event.Event{crash}, []*event.Event{deploy}},
		{"everything at once", `
alert_name: KubePodCrashLooping
status: firing
namespace_prefix: prod
pod_name_prefix: cart
instance_name_prefix: "10."
name_prefix: cart-7
labels_selector: team=payments
scope:
  include:
    - namespace: prod-.*
`, []*event.Event{crash}, []*event.Event{crashResolved, node, deploy}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := buildTrigger(t, tt.yaml)
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			for _, ev := range tt.match {
				if !tr.Match(ev) {
					t.Errorf("does not match %s %s %v", ev.Status, ev.Title, ev.Labels)
				}
			}
			for _, ev := range tt.miss {
				if tr.Match(ev) {
					t.Errorf("matches %s %s %v", ev.Status, ev.Title, ev.Labels)
				}
			}
		})
	}
}

func TestOnPrometheusAlertBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"unknown parameter", "alert_name: X\nalert_nme: Y\n", `line 2: unknown parameter "alert_nme" (did you mean "alert_name"?)`},
		{"unknown parameter in scope", "scope:\n  include:\n    - lables: {a: b}\n", `line 3: unknown parameter "lables"`},
		{"bad status", "status: open\n", `line 1: status "open" is not firing, resolved or all`},
		{"set-based selector", "labels_selector: 'env in (a,b)'\n", "set-based selectors"},
		{"empty selector term", "labels_selector: 'a=b,,c'\n", "empty term"},
		{"selector without key", "labels_selector: '=b'\n", "label name is missing"},
		{"bad scope regex", "scope:\n  include:\n    - namespace: '(('\n", "line 3"},
		{"wrong type", "alert_name: [a, b]\n", "line 1"},
		{"negative rate limit", "rate_limit: -5\n", "line 1: -5: must not be negative"},
		{"bad rate limit", "rate_limit: soon\n", `"soon" is neither seconds`},
		{"rate limit by nothing", "rate_limit: 10m\nrate_limit_by: []\n", "rate_limit_by: is empty"},
		{"rate limit by an empty label", "rate_limit_by: [alertname, '']\n", "rate_limit_by[1]: must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildTrigger(t, tt.yaml)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSelectorString(t *testing.T) {
	sel, err := prometheus.ParseSelector(" a = 1, b!=2 ,c,!d,e==5")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sel.String(), "a=1,b!=2,c,!d,e=5"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// The rate limit counts per rate_limit_by labels (alertname and namespace
// by default): alerts that differ only in other labels share a key; the
// same parameters give the same key in any playbook; other parameters, or
// another namespace, another key.
func TestOnPrometheusAlertLimitKey(t *testing.T) {
	t.Parallel()
	limited := func(src string) triggers.Limited {
		t.Helper()
		tr, err := buildTrigger(t, src)
		if err != nil {
			t.Fatal(err)
		}
		l, ok := tr.(triggers.Limited)
		if !ok {
			t.Fatalf("%T is not triggers.Limited", tr)
		}
		return l
	}
	ev := func(labels ...string) *event.Event {
		m := map[string]string{}
		for i := 0; i+1 < len(labels); i += 2 {
			m[labels[i]] = labels[i+1]
		}
		return alertEvent(event.StatusFiring, m, nil)
	}
	def := limited("rate_limit: 600")
	if def.RateLimit() != 10*time.Minute {
		t.Errorf("rate_limit: 600 is %v, want 10m", def.RateLimit())
	}
	if limited("{}").RateLimit() != 0 {
		t.Error("no rate_limit is not 0")
	}
	byPod := limited("{rate_limit: 10m, rate_limit_by: [pod]}")
	a := ev("alertname", "A", "namespace", "shop", "pod", "p1")
	tests := []struct {
		name string
		l    triggers.Limited
		ev   *event.Event
		same bool // the same key as def over a
	}{
		{"the same alert", def, a, true},
		{"another pod", def, ev("alertname", "A", "namespace", "shop", "pod", "p2"), true},
		{"the same parameters, built again", limited("rate_limit: 10m"), a, true},
		{"another namespace", def, ev("alertname", "A", "namespace", "billing", "pod", "p1"), false},
		{"another alertname", def, ev("alertname", "B", "namespace", "shop", "pod", "p1"), false},
		{"other parameters", byPod, a, false},
	}
	for _, tt := range tests {
		if got := tt.l.LimitKey(tt.ev) == def.LimitKey(a); got != tt.same {
			t.Errorf("%s: same key %v, want %v", tt.name, got, tt.same)
		}
	}
	if byPod.LimitKey(a) == byPod.LimitKey(ev("alertname", "A", "namespace", "shop", "pod", "p2")) {
		t.Error("rate_limit_by: [pod]: two pods share a key")
	}
}
