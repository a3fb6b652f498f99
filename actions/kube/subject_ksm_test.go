package kube

import (
	"testing"

	"github.com/medichq/medic/event"
)

// An alert's subject, worked out by the webhook, is not filled again from
// the raw labels: for a Deployment's kube-state-metrics series (holmesgpt's
// recorded KubeDeploymentReplicasMismatch) the container label is the
// exporter's, and the logs of the Deployment's pods must not be asked for
// a container named kube-state-metrics.
func TestSubjectOfAlertKeepsTheWebhooksSubject(t *testing.T) {
	t.Parallel()
	ev := &event.Event{Kind: event.KindPrometheusAlert,
		Labels: map[string]string{"alertname": "KubeDeploymentReplicasMismatch", "job": "kube-state-metrics",
			"pod": "robusta-kube-state-metrics-8667fd9775-dmqfj", "container": "kube-state-metrics",
			"namespace": "default", "deployment": "user-profile-resources", "instance": "10.244.0.11:8080"},
		Subject: event.Subject{Kind: "Deployment", Namespace: "default", Name: "user-profile-resources"},
	}
	if got, want := SubjectOf(ev), ev.Subject; got != want {
		t.Errorf("SubjectOf = %+v, want the webhook's %+v", got, want)
	}
	node := &event.Event{Kind: event.KindPrometheusAlert, Subject: event.Subject{Kind: "Node", Name: "worker-2"}}
	if got := SubjectOf(node); got.Node != "worker-2" {
		t.Errorf("a node subject's Node = %q, want worker-2", got.Node)
	}
}
