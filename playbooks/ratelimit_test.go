package playbooks

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/medichq/medic/bus/triggerstate"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
	"github.com/medichq/medic/event/webhookevent"
	"github.com/medichq/medic/internal/natstest"
	"github.com/medichq/medic/internal/testkit"
)

// limitedEngine is an engine over set whose rate limits live in JetStream
// KV on an embedded server, as in medic serve, on a clock the test moves.
func limitedEngine(t *testing.T, set *Set, kv *triggerstate.Limits, now *time.Time) *Engine {
	t.Helper()
	e := newEngine(t, set)
	e.LimitRates(kv)
	e.now = func() time.Time { return *now }
	return e
}

func openLimits(t *testing.T) *triggerstate.Limits {
	t.Helper()
	ns := natstest.Start(t, nil)
	kv, err := triggerstate.Open(context.Background(), ns.JetStream(), 24*time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	return triggerstate.NewLimits(kv, 24*time.Hour)
}

// 20 alerts of one alertname and namespace inside rate_limit: one finding,
// 19 counted skips; a redelivered event gets the answer it got before; the
// window is per alertname+namespace and ends.
func TestPrometheusRateLimit(t *testing.T) {
	t.Parallel()
	set := mustBuild(t, map[string]string{"pb.yaml": `
- name: crashloop
  triggers:
    - on_prometheus_alert: {alert_name: KubePodCrashLooping, rate_limit: 10m}
  actions: [{create_finding: {}}]
`})
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	e := limitedEngine(t, set, openLimits(t), &now)
	ctx := context.Background()
	crash := func(ns string, i int) *event.Event {
		ev := alert("KubePodCrashLooping", event.StatusFiring, map[string]string{"namespace": ns, "pod": fmt.Sprint("cart-", i)})
		ev.ID = event.NewID("test", ns+ev.Labels["pod"], ev.Status, ev.StartsAt)
		return ev
	}
	run := func(ev *event.Event) bool {
		t.Helper()
		res, err := e.Run(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		return res.Finding != nil
	}

	var sent []*event.Event
	findings := map[string]int{} // event ID → findings
	for i := range 20 {
		ev := crash("shop", i)
		sent = append(sent, ev)
		if run(ev) {
			findings[ev.ID]++
		}
		now = now.Add(10 * time.Second)
	}
	if len(findings) != 1 || findings[sent[0].ID] != 1 {
		t.Fatalf("findings %v, want one, for the first alert", findings)
	}
	limited := e.rateLimited.WithLabelValues("on_prometheus_alert")
	if got := testutil.ToFloat64(limited); got != 19 {
		t.Fatalf("medic_trigger_rate_limited_total = %v, want 19", got)
	}
	if got := testutil.ToFloat64(e.unmatched); got != 0 {
		t.Errorf("rate-limited alerts counted as unmatched: %v", got)
	}

	// Redelivery (the same event IDs): the same answers, nothing lost,
	// the admitted one not held back by its own claim.
	if !run(sent[0]) {
		t.Error("the admitted alert, redelivered, was refused")
	}
	if run(sent[7]) {
		t.Error("a refused alert, redelivered, was admitted")
	}

	// Another namespace has its own window.
	if !run(crash("billing", 0)) {
		t.Error("an alert of another namespace was held back")
	}
	// After the window the next alert fires again, once.
	now = time.Date(2026, 12, 4, 10, 11, 0, 0, time.UTC)
	if !run(crash("shop", 100)) {
		t.Error("the window passed but the alert was held back")
	}
	if run(crash("shop", 101)) {
		t.Error("a second alert in the new window fired")
	}
}

// The limit applies per trigger: a playbook with a second, unlimited
// trigger that matches still runs, and a playbook without rate_limit is
// never held back by another's.
func TestRateLimitPerTrigger(t *testing.T) {
	t.Parallel()
	set := mustBuild(t, map[string]string{"pb.yaml": `
- name: limited
  triggers:
    - on_webhook: {source: argocd, rate_limit: 1h}
  actions: [{create_finding: {}}]
- name: unlimited
  triggers:
    - on_webhook: {source: argocd}
  actions: [{template_enricher: {template: every}}]
`})
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	e := limitedEngine(t, set, openLimits(t), &now)
	tests := []struct {
		id, app string
		want    []string // playbooks that ran
	}{
		{"e1", "shop", []string{"limited", "unlimited"}},
		{"e2", "shop", []string{"unlimited"}},
		{"e3", "billing", []string{"limited", "unlimited"}},
		{"e1", "shop", []string{"limited", "unlimited"}}, // redelivered
		{"e4", "billing", []string{"unlimited"}},
	}
	for i, tc := range tests {
		ev := &event.Event{ID: tc.id, Kind: webhookevent.Kind, Source: webhookevent.SourcePrefix + "argocd",
			Status: event.StatusFiring, Title: "sync failed", Subject: event.Subject{Kind: "Application", Namespace: "argocd", Name: tc.app}}
		res, err := e.Run(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		if res.Finding == nil {
			t.Fatalf("step %d: no finding", i)
		}
		if got, want := fmt.Sprint(res.Finding.Playbooks), fmt.Sprint(tc.want); got != want {
			t.Errorf("step %d (%s %s): playbooks %s, want %s", i, tc.id, tc.app, got, want)
		}
	}
	if got := testutil.ToFloat64(e.rateLimited.WithLabelValues("on_webhook")); got != 2 {
		t.Errorf("medic_trigger_rate_limited_total{trigger=on_webhook} = %v, want 2", got)
	}
}

// Kubernetes triggers are limited by the engine like alerts, per the
// workload the detector wrote on the event (kubeevent.LabelRateLimitSubject):
// two crash-looping pods of one Deployment within rate_limit give one
// finding, another Deployment its own, the next crash after the window
// another; a redelivered event gets the answer it got before.
func TestKubernetesRateLimitPerWorkload(t *testing.T) {
	t.Parallel()
	set := mustBuild(t, map[string]string{"pb.yaml": `
- name: crashloop
  triggers:
    - on_pod_crash_loop: {rate_limit: 10m}
  actions: [{create_finding: {}}]
`})
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	now := start
	e := limitedEngine(t, set, openLimits(t), &now)
	crash := func(id, pod, workload string) *event.Event {
		return &event.Event{ID: id, Kind: event.KindPodCrashLoop, Source: kubeevent.Source, Status: event.StatusFiring,
			Title:   "Pod shop/" + pod + " container app is crash looping",
			Subject: event.Subject{Kind: "Pod", Namespace: "shop", Name: pod, Container: "app"},
			Labels: map[string]string{"namespace": "shop", "pod": pod, "reason": "CrashLoopBackOff", "restart_count": "5",
				kubeevent.LabelRateLimitSubject: workload}}
	}
	steps := []struct {
		at   time.Duration // after start
		ev   *event.Event
		want bool // a finding
	}{
		{0, crash("e1", "cart-7d9f-abcde", "shop/Deployment/cart"), true},
		{time.Minute, crash("e2", "cart-7d9f-xyz12", "shop/Deployment/cart"), false},            // the same Deployment's other pod
		{2 * time.Minute, crash("e1", "cart-7d9f-abcde", "shop/Deployment/cart"), true},         // e1 redelivered
		{3 * time.Minute, crash("e2", "cart-7d9f-xyz12", "shop/Deployment/cart"), false},        // e2 redelivered
		{4 * time.Minute, crash("e3", "checkout-5c6b-qrstu", "shop/Deployment/checkout"), true}, // another Deployment
		{11 * time.Minute, crash("e4", "cart-7d9f-xyz12", "shop/Deployment/cart"), true},        // after the window
		{12 * time.Minute, crash("e5", "cart-7d9f-abcde", "shop/Deployment/cart"), false},       // within the new one
	}
	findings := map[string]int{} // finding ID (the event's) → findings made
	made := 0
	for i, s := range steps {
		now = start.Add(s.at)
		res, err := e.Run(context.Background(), s.ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Finding != nil; got != s.want {
			t.Errorf("step %d (%s, %s at +%v): finding %v, want %v", i, s.ev.ID, s.ev.Subject.Name, s.at, got, s.want)
		}
		if res.Finding != nil {
			made++
			findings[res.Finding.ID]++
		}
	}
	// Distinct findings: e1, e3, e4; e1's redelivery made e1's finding
	// again, which the findings stream drops by its ID (Nats-Msg-Id).
	if len(findings) != 3 || findings["e1"] != 2 || findings["e3"] != 1 || findings["e4"] != 1 || made != 4 {
		t.Errorf("findings by ID %v (%d made), want e1 twice (the redelivery), e3 and e4 once", findings, made)
	}
	if got := testutil.ToFloat64(e.rateLimited.WithLabelValues("on_pod_crash_loop")); got != 3 {
		t.Errorf("medic_trigger_rate_limited_total{trigger=on_pod_crash_loop} = %v, want 3 (e2 twice, e5)", got)
	}
}

// A rate_limit longer than the limiter keeps its claims (kubernetes.state_ttl)
// is cut to it; the engine says so once per playbook set, naming the
// playbook and trigger, for every source's triggers.
func TestRateLimitLongerThanStateTTLIsWarnedOnce(t *testing.T) {
	t.Parallel()
	set := mustBuild(t, map[string]string{"pb.yaml": `
- name: crashloop
  triggers:
    - on_pod_crash_loop: {rate_limit: 48h}
  actions: [{create_finding: {}}]
- name: alerts
  triggers:
    - on_prometheus_alert: {alert_name: KubePodCrashLooping, rate_limit: 25h}
    - on_prometheus_alert: {alert_name: KubeJobFailed, rate_limit: 1h}
  actions: [{create_finding: {}}]
`})
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	// No event below matches a playbook: the limiter is asked only its cap.
	e := limitedEngine(t, set, triggerstate.NewLimits(nil, 24*time.Hour), &now)
	logs := &testkit.SyncBuffer{}
	e.logger = slog.New(slog.NewTextHandler(logs, nil))
	for range 3 {
		if _, err := e.RunSet(context.Background(), set, alert("Unrelated", event.StatusFiring, nil)); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2 (one per trigger over state_ttl, once):\n%s", len(lines), logs.String())
	}
	for i, want := range []string{"playbook=crashloop trigger=on_pod_crash_loop rate_limit=48h0m0s state_ttl=24h0m0s",
		"playbook=alerts trigger=on_prometheus_alert rate_limit=25h0m0s state_ttl=24h0m0s"} {
		if !strings.Contains(lines[i], "level=WARN") || !strings.Contains(lines[i], want) {
			t.Errorf("line %d: %s\nwant a warning with %s", i, lines[i], want)
		}
	}
}
