package webhook

import (
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/webhookevent"
	"github.com/medichq/medic/triggers"
)

func TestTriggerMatch(t *testing.T) {
	t.Parallel()
	build := func(params string) triggers.Trigger {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(params), &node); err != nil {
			t.Fatal(err)
		}
		tr, err := triggers.Build(TriggerName, node.Content[0])
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
