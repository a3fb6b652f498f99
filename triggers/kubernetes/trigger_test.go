package kubernetes

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/bus/triggerstate"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
	"github.com/medichq/medic/triggers"
)

// registered is a registry with this package's triggers, the one the
// tests build them from.
var registered = triggers.NewRegistry(Register)

func buildTrigger(t *testing.T, name, params string) (*Trigger, error) {
	t.Helper()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(params), &node); err != nil {
		t.Fatal(err)
	}
	tr, err := registered.Build(name, &node)
	if err != nil {
		return nil, err
	}
	return tr.(*Trigger), nil
}

func TestTriggerParameters(t *testing.T) {
	for _, tc := range []struct {
		name, params string
		rateLimit    time.Duration
		delay        time.Duration
		err          string
	}{
		{name: TriggerPodCrashLoop, params: "{}", rateLimit: 4 * time.Hour},
		{name: TriggerPodOOMKilled, params: "{rate_limit: 3600}", rateLimit: time.Hour}, // Robusta's built-in
		{name: TriggerImagePullBackoff, params: "{}", rateLimit: 4 * time.Hour, delay: 2 * time.Minute},
		{name: TriggerImagePullBackoff, params: "{fire_delay: 90s}", rateLimit: 4 * time.Hour, delay: 90 * time.Second},
		{name: TriggerNodeNotReady, params: "{duration: 300}", delay: 5 * time.Minute},
		{name: TriggerWarningEvent, params: "{exclude: [NodeSysctlChange]}", rateLimit: time.Hour},
		{name: TriggerJobFailure, params: `{scope: {include: [{labels: {app: krr.robusta.dev}}]}}`},
		{name: TriggerPodCrashLoop, params: "{restart_reasn: x}", err: `unknown parameter "restart_reasn" (did you mean "restart_reason"?)`},
		{name: TriggerPodCrashLoop, params: "{rate_limit: soon}", err: `"soon" is neither seconds (3600) nor a duration`},
		{name: TriggerPodCrashLoop, params: "{rate_limit: -5}", err: "must not be negative"},
		{name: TriggerImagePullBackoff, params: "{fire_delay: 0}", err: "fire_delay: must be positive"},
		{name: TriggerPodEvicted, params: "{labels_selector: 'app in (a'}", err: "labels_selector"},
		{name: TriggerResource, params: "{resource: Deployment}", err: `"Deployment" is not group/version/resource`},
		{name: TriggerResource, params: "{resource: apps/v1/Deployment}", err: "lower-case plural"},
		{name: TriggerResource, params: "{resource: apps/v1/deployments, operations: [patch]}", err: `"patch" is not create, update or delete`},
		{name: TriggerResource, params: "{}", err: "resource"},
	} {
		tr, err := buildTrigger(t, tc.name, tc.params)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %s: error %v, want %q", tc.name, tc.params, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %s: %v", tc.name, tc.params, err)
			continue
		}
		if tr.RateLimit() != tc.rateLimit || tr.Delay() != tc.delay {
			t.Errorf("%s %s: rate limit %v delay %v, want %v and %v", tc.name, tc.params, tr.RateLimit(), tr.Delay(), tc.rateLimit, tc.delay)
		}
	}
	a, _ := buildTrigger(t, TriggerPodCrashLoop, "{rate_limit: 3600}")
	b, _ := buildTrigger(t, TriggerPodCrashLoop, "{rate_limit: 1h}")
	c, _ := buildTrigger(t, TriggerPodCrashLoop, "{rate_limit: 2h}")
	if a.ID() != b.ID() || a.ID() == c.ID() {
		t.Errorf("IDs: 3600=%s 1h=%s 2h=%s; equal parameters must share an ID, different ones not", a.ID(), b.ID(), c.ID())
	}
}

func TestTriggerMatching(t *testing.T) {
	pod := func(labels map[string]string) *event.Event {
		l := map[string]string{"namespace": "prod-eu", "pod": "cart-7d9", "reason": "CrashLoopBackOff", "restart_count": "5", "app": "cart", "team": "shop"}
		for k, v := range labels {
			l[k] = v
		}
		return &event.Event{Kind: event.KindPodCrashLoop, Source: kubeevent.Source, Severity: event.SeverityHigh, Labels: l,
			Subject: event.Subject{Kind: "Pod", Namespace: "prod-eu", Name: "cart-7d9", Container: "app"}}
	}
	for _, tc := range []struct {
		params string
		ev     *event.Event
		want   bool
	}{
		{"{}", pod(nil), true},
		{"{}", pod(map[string]string{"restart_count": "1"}), false},
		{"{restart_count: 6}", pod(nil), false},
		{"{restart_reason: ''}", pod(map[string]string{"reason": "CreateContainerConfigError"}), true},
		{"{}", pod(map[string]string{"reason": "CreateContainerConfigError"}), false},
		{"{namespace_prefix: prod-}", pod(nil), true},
		{"{namespace_prefix: stage-}", pod(nil), false},
		{"{name_prefix: cart}", pod(nil), true},
		{"{name_prefix: web}", pod(nil), false},
		{"{labels_selector: 'app=cart,team in (shop,web)'}", pod(nil), true},
		{"{labels_selector: '!team'}", pod(nil), false},
		{"{scope: {exclude: [{labels: {team: sh.*}}]}}", pod(nil), false},
		{"{scope: {include: [{namespace: prod-.*}]}}", pod(nil), true},
		{"{scope: {include: [{namespace: stage}]}}", pod(nil), false},
	} {
		tr, err := buildTrigger(t, TriggerPodCrashLoop, tc.params)
		if err != nil {
			t.Fatal(err)
		}
		if got := tr.Match(tc.ev); got != tc.want {
			t.Errorf("%s on %v: %v, want %v", tc.params, tc.ev.Labels, got, tc.want)
		}
	}
	tr, _ := buildTrigger(t, TriggerPodCrashLoop, "{}")
	ev := pod(nil)
	if tr.Match(&event.Event{Kind: event.KindPodOOMKilled, Labels: ev.Labels}) {
		t.Error("matched another kind")
	}
	oom, _ := buildTrigger(t, TriggerContainerOOMKilled, "{exclude: [{name: cart}, {namespace: kube-system}]}")
	for _, s := range []struct {
		ns, name string
		want     bool
	}{{"prod-eu", "cart-7d9", false}, {"kube-system", "coredns-1", false}, {"prod-eu", "web-1", true}} {
		e := &event.Event{Kind: event.KindContainerOOMKilled, Subject: event.Subject{Namespace: s.ns, Name: s.name}}
		if got := oom.Match(e); got != s.want {
			t.Errorf("exclude on %s/%s: %v, want %v", s.ns, s.name, got, s.want)
		}
	}
}

// LimitKey counts per the subject the detector wrote on the event: the
// pods of one workload share a key, other workloads, kinds of workload or
// triggers (parameters) do not.
func TestLimitKey(t *testing.T) {
	t.Parallel()
	crash := func(pod, subject string) *event.Event {
		ev := &event.Event{Kind: event.KindPodCrashLoop, Source: kubeevent.Source,
			Subject: event.Subject{Kind: "Pod", Namespace: "shop", Name: pod, Container: "app"},
			Labels:  map[string]string{"namespace": "shop", "pod": pod}}
		if subject != "" {
			ev.Labels[kubeevent.LabelRateLimitSubject] = subject
		}
		return ev
	}
	four, err := buildTrigger(t, TriggerPodCrashLoop, "{}") // rate_limit 4h
	if err != nil {
		t.Fatal(err)
	}
	one, err := buildTrigger(t, TriggerPodCrashLoop, "{rate_limit: 1h}")
	if err != nil {
		t.Fatal(err)
	}
	var limited triggers.Limited = four
	base := limited.LimitKey(crash("cart-7d9f-abcde", "shop/Deployment/cart"))
	tests := []struct {
		name string
		key  string
		same bool // as base
	}{
		{"another pod of the Deployment's ReplicaSet", four.LimitKey(crash("cart-7d9f-xyz12", "shop/Deployment/cart")), true},
		{"a pod of the Deployment's next ReplicaSet", four.LimitKey(crash("cart-5c6b-qrstu", "shop/Deployment/cart")), true},
		{"another Deployment", four.LimitKey(crash("cart-7d9f-abcde", "shop/Deployment/checkout")), false},
		{"a StatefulSet of the same name", four.LimitKey(crash("cart-0", "shop/StatefulSet/cart")), false},
		{"the same name in another namespace", four.LimitKey(crash("cart-7d9f-abcde", "billing/Deployment/cart")), false},
		{"another rate_limit (another trigger ID)", one.LimitKey(crash("cart-7d9f-abcde", "shop/Deployment/cart")), false},
		{"no label (an older medic's event): per pod", four.LimitKey(crash("cart-7d9f-abcde", "")), false},
	}
	for _, tc := range tests {
		if got := tc.key == base; got != tc.same {
			t.Errorf("%s: key %s, base %s: same %v, want %v", tc.name, tc.key, base, got, tc.same)
		}
		if strings.Trim(tc.key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
			t.Errorf("%s: key %q is not KV-safe", tc.name, tc.key)
		}
	}
	if a, b := four.LimitKey(crash("a", "")), four.LimitKey(crash("b", "")); a == b {
		t.Error("without the label two pods share a key")
	}
	// The key the detector claimed windows under before the engine applied
	// these limits (ID "." triggerstate.Hash(subject)): windows claimed by
	// an older medic hold across the upgrade.
	if want := four.ID() + "." + triggerstate.Hash("shop/Deployment/cart"); base != want {
		t.Errorf("key %s, want the detector's former key %s", base, want)
	}
	if four.RateLimit() != 4*time.Hour || one.RateLimit() != time.Hour {
		t.Errorf("rate limits %v and %v, want 4h and 1h", four.RateLimit(), one.RateLimit())
	}
}

func TestGVR(t *testing.T) {
	for in, want := range map[string]string{
		"apps/v1/deployments": "apps/v1/deployments", "v1/configmaps": "v1/configmaps", "/v1/pods": "v1/pods",
		"example.com/v1alpha1/widgets": "example.com/v1alpha1/widgets",
	} {
		gvr, err := kubeevent.ParseGVR(in)
		if err != nil || kubeevent.FormatGVR(gvr) != want {
			t.Errorf("%s: %v %v", in, kubeevent.FormatGVR(gvr), err)
		}
	}
}
