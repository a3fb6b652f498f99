package webhook

import (
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/webhookevent"
	"github.com/medichq/medic/triggers"
)

// registered is a registry with this package's trigger, the one the tests
// build it from.
var registered = triggers.NewRegistry(Register)

func TestTriggerMatch(t *testing.T) {
	t.Parallel()
	build := func(params string) triggers.Trigger {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(params), &node); err != nil {
			t.Fatal(err)
		}
		tr, err := registered.Build(TriggerName, node.Content[0])
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	argo := event.Event{Kind: webhookevent.Kind, Source: "webhook/argocd", Status: event.StatusFiring, Severity: event.SeverityHigh,
		Subject: event.Subject{Namespace: "shop"}, Labels: map[string]string{"tool": "argocd"}}
	resolved := argo
	resolved.Status = event.StatusResolved
	alert := argo
	alert.Kind = event.KindPrometheusAlert
	tests := []struct {
		params string
		ev     event.Event
		want   bool
	}{
		{"source: argocd", argo, true},
		{"{}", argo, true},
		{"source: flux", argo, false},
		{"source: argocd", resolved, false},
		{"{source: argocd, status: all}", resolved, true},
		{"source: argocd", alert, false},
		{"{source: argocd, scope: {include: [{namespace: shop}]}}", argo, true},
		{"{source: argocd, scope: {exclude: [{namespace: shop}]}}", argo, false},
	}
	for _, tt := range tests {
		ev := tt.ev
		if got := build(tt.params).Match(&ev); got != tt.want {
			t.Errorf("on_webhook %s on %s/%s: %v, want %v", tt.params, ev.Kind, ev.Status, got, tt.want)
		}
	}
}

// on_webhook limits per source and subject (the title without a subject).
func TestTriggerLimitKey(t *testing.T) {
	t.Parallel()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte("rate_limit: 1h"), &node); err != nil {
		t.Fatal(err)
	}
	tr, err := registered.Build(TriggerName, node.Content[0])
	if err != nil {
		t.Fatal(err)
	}
	l, ok := tr.(triggers.Limited)
	if !ok || l.RateLimit() != time.Hour {
		t.Fatalf("%T: Limited %v", tr, ok)
	}
	app := func(src, name, title string) *event.Event {
		ev := &event.Event{Kind: webhookevent.Kind, Source: "webhook/" + src, Title: title}
		if name != "" {
			ev.Subject = event.Subject{Kind: "Application", Namespace: "argocd", Name: name}
		}
		return ev
	}
	base := l.LimitKey(app("argocd", "shop", "sync failed"))
	tests := []struct {
		name string
		ev   *event.Event
		same bool
	}{
		{"another title, the same subject", app("argocd", "shop", "degraded"), true},
		{"another subject", app("argocd", "billing", "sync failed"), false},
		{"another source", app("flux", "shop", "sync failed"), false},
		{"no subject: by title", app("argocd", "", "sync failed"), false},
	}
	for _, tt := range tests {
		if got := l.LimitKey(tt.ev) == base; got != tt.same {
			t.Errorf("%s: same key %v, want %v", tt.name, got, tt.same)
		}
	}
	if l.LimitKey(app("kubecost", "", "budget")) != l.LimitKey(app("kubecost", "", "budget")) ||
		l.LimitKey(app("kubecost", "", "budget")) == l.LimitKey(app("kubecost", "", "idle")) {
		t.Error("without a subject the key does not follow the title")
	}
}
