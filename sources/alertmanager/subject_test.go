package alertmanager

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/alertmanager/template"

	"github.com/medichq/medic/event"
)

// Two alerts Robusta recorded from a kube-prometheus-stack cluster
// (holmesgpt's fixtures), both scraped from kube-state-metrics with
// honor_labels: the Deployment's series has the exporter's pod and
// container added as target labels, and Robusta's own answer for its
// subject (subject_type, subject_name, subject_namespace) is the Deployment;
// medic's must agree. The pod's series keeps its pod (Robusta loads the pod
// named by the pod label), and neither subject is the exporter's address.
func TestSubjectAgreesWithRobustaOnRecordedAlerts(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		file string
		want event.Subject
	}{
		{"holmesgpt__11_KubePodCrashLooping__issue_data.json",
			event.Subject{Kind: "Pod", Namespace: "default", Name: "payment-processing-worker-747ccfb9db-pd6wz", Container: "payment-processing-container"}},
		{"holmesgpt__10_KubeDeploymentReplicasMismatch__issue_data.json",
			event.Subject{Kind: "Deployment", Namespace: "default", Name: "user-profile-resources"}},
	} {
		var issue struct {
			Type      string            `json:"subject_type"`
			Name      string            `json:"subject_name"`
			Namespace string            `json:"subject_namespace"`
			Labels    map[string]string `json:"labels"`
			Raw       struct {
				Labels map[string]string `json:"labels"`
			} `json:"raw"`
		}
		if err := json.Unmarshal(readPayload(t, tt.file), &issue); err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		labels := issue.Raw.Labels
		if labels == nil {
			labels = issue.Labels
		}
		if labels["job"] != "kube-state-metrics" {
			t.Fatalf("%s: not a kube-state-metrics alert: %v", tt.file, labels)
		}
		if issue.Type != "" && (!strings.EqualFold(issue.Type, tt.want.Kind) || issue.Name != tt.want.Name || issue.Namespace != tt.want.Namespace) {
			t.Fatalf("%s: Robusta's subject is %s %s/%s, the test wants %+v", tt.file, issue.Type, issue.Namespace, issue.Name, tt.want)
		}
		if got := SubjectFromLabels(template.KV(labels)); got != tt.want {
			t.Errorf("%s: subject %+v, want %+v", tt.file, got, tt.want)
		}
	}
}

// The rules for the exporter's labels, on label sets as kube-state-metrics
// series arrive with either honor_labels setting (the series and their
// labels are kube-state-metrics v2's; the target labels are those the
// Prometheus Operator's ServiceMonitor adds).
func TestSubjectOfKubeStateMetricsSeries(t *testing.T) {
	t.Parallel()
	target := map[string]string{ // the exporter, as a scrape target
		"job": "kube-state-metrics", "service": "prometheus-kube-state-metrics", "endpoint": "http",
		"instance": "10.244.0.11:8080", "namespace": "monitoring",
		"pod": "prometheus-kube-state-metrics-6d8f7b9c4-x2x9q", "container": "kube-state-metrics",
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(out, kv[i])
				continue
			}
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   event.Subject
	}{
		{"honor_labels false: a pod's series is in the exported_ labels",
			with(target, "alertname", "KubePodCrashLooping", "exported_pod", "cart-7d9", "exported_namespace", "shop", "exported_container", "app", "reason", "CrashLoopBackOff"),
			event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart-7d9", Container: "app"}},
		{"honor_labels false: a pod-level series without a container drops the exporter's container",
			with(target, "alertname", "KubePodNotReady", "exported_pod", "cart-7d9", "exported_namespace", "shop"),
			event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart-7d9"}},
		{"honor_labels false: a Deployment's series names its namespace in exported_namespace",
			with(target, "alertname", "KubeDeploymentReplicasMismatch", "deployment", "cart", "exported_namespace", "shop"),
			event.Subject{Kind: "Deployment", Namespace: "shop", Name: "cart"}},
		{"honor_labels true: a Deployment's series carries the exporter's pod",
			with(target, "alertname", "KubeDeploymentReplicasMismatch", "deployment", "cart", "namespace", "shop"),
			event.Subject{Kind: "Deployment", Namespace: "shop", Name: "cart"}},
		{"honor_labels true: the exporter's pod under another name, told by its container",
			with(target, "alertname", "KubeStatefulSetReplicasMismatch", "statefulset", "pg", "namespace", "db", "pod", "ksm-6d8f7b9c4-x2x9q"),
			event.Subject{Kind: "StatefulSet", Namespace: "db", Name: "pg"}},
		{"honor_labels true: a pod's own series keeps its pod and container",
			with(target, "alertname", "KubePodCrashLooping", "pod", "cart-7d9", "namespace", "shop", "container", "app"),
			event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart-7d9", Container: "app"}},
		{"a node's series: the node, never the exporter's address or namespace",
			with(target, "alertname", "KubeNodeNotReady", "node", "worker-2", "condition", "Ready"),
			event.Subject{Kind: "Node", Name: "worker-2", Node: "worker-2"}},
		{"a cluster-level series names nothing: not the exporter's pod, not its address",
			with(target, "alertname", "KubeStateMetricsListErrors", "resource", "configmaps"),
			event.Subject{}},
		{"not from kube-state-metrics: pod and instance as before",
			map[string]string{"alertname": "CPUThrottlingHigh", "job": "kubelet", "namespace": "shop", "pod": "cart-7d9", "container": "app", "instance": "10.0.0.5:10250"},
			event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart-7d9", Container: "app"}},
		{"not from kube-state-metrics, no object: the instance",
			map[string]string{"alertname": "NodeFilesystemAlmostOutOfSpace", "job": "node-exporter", "instance": "db1:9100"},
			event.Subject{Name: "db1:9100"}},
	}
	for _, tt := range tests {
		if got := SubjectFromLabels(template.KV(tt.labels)); got != tt.want {
			t.Errorf("%s: subject %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
