package kube

import (
	"bytes"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks/stdout"
)

// The evidence actions Robusta users name that medic had no equivalent
// for, rendered by the stdout sink like TestGoldenEnrichments, on the real
// samples.
func TestGoldenRobustaEvidence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		finding func(t *testing.T) *event.Finding
	}{
		{"oom_killer_limit", func(t *testing.T) *event.Finding { return goldenOOMKiller(t, false) }},
		{"oom_killer_node", func(t *testing.T) *event.Finding { return goldenOOMKiller(t, true) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := stdout.Render(&buf, tt.finding(t), false); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.name, buf.Bytes())
		})
	}
}

// oomNode is the node of the OOM-killed holmesgpt sample, with other pods
// on it whose limits overcommit its memory.
func oomNode(name string) (*corev1.Node, []runtime.Object) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{"cpu": resource.MustParse("4"), "memory": resource.MustParse("8148204Ki")},
			Allocatable: corev1.ResourceList{"cpu": resource.MustParse("4"), "memory": resource.MustParse("8045804Ki")},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory",
				LastTransitionTime: metav1.NewTime(sampleBase.Add(-72 * time.Hour))}},
		},
	}
	pod := func(ns, name, req, lim string) runtime.Object {
		r := corev1.ResourceRequirements{Requests: corev1.ResourceList{"memory": resource.MustParse(req)}}
		if lim != "" {
			r.Limits = corev1.ResourceList{"memory": resource.MustParse(lim)}
		}
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:   corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{{Name: "main", Resources: r}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	}
	return node, []runtime.Object{
		pod("monitoring", "prometheus-0", "2Gi", "6Gi"),
		pod("shop", "search-5c9d-2kq8x", "1Gi", "3Gi"),
		pod("kube-system", "coredns-7db6d8ff4d-4xq2m", "70Mi", "170Mi"),
		pod("batch", "report-28934-9xk2p", "4Gi", ""), // finished: holds nothing
	}
}

func goldenOOMKiller(t *testing.T, systemOOM bool) *event.Finding {
	pod, evs := describePod(t, "oomkilled/holmesgpt__01_oom_kill__kubectl_describe.txt")
	node, others := oomNode(pod.Spec.NodeName)
	others[3].(*corev1.Pod).Status.Phase = corev1.PodSucceeded
	objs := append(objects(evs), pod, node)
	objs = append(objs, others...)
	if systemOOM {
		_, t := oomKilled(pod)
		at := metav1.NewTime(t.FinishedAt.Add(-2 * time.Second))
		objs = append(objs, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: node.Name + ".systemoom", Namespace: "default"},
			InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: node.Name, UID: "grafana-cloud-control-plane"},
			Type:           corev1.EventTypeWarning, Reason: "SystemOOM",
			Message: "System OOM encountered, victim process: memory-eater, pid: 48213",
			Source:  corev1.EventSource{Component: "kubelet", Host: node.Name}, Count: 1, FirstTimestamp: at, LastTimestamp: at,
		})
	}
	c := newCluster(t, objs...)
	return runActions(t, c.env(), podEvent(event.KindPodOOMKilled, pod, "memory-eater"), [2]string{"pod_oom_killer_enricher", ""})
}

func TestOOMKillerEnricherDegrades(t *testing.T) {
	t.Parallel()
	pod, _ := describePod(t, "oomkilled/holmesgpt__01_oom_kill__kubectl_describe.txt")
	crash, _ := describePod(t, "crashloopbackoff/holmesgpt__11_KubePodCrashLooping__kubectl_describe.txt")
	tests := []struct {
		name  string
		setup func(c *cluster)
		pod   *corev1.Pod
		want  string
	}{
		{"the node may not be read: the container's side, and why the node's is missing", func(c *cluster) { c.deny("get", "nodes", "") },
			pod, `reached its own memory limit of 100Mi|⚠ forbidden: cannot get nodes`},
		{"a pod that was not OOM killed is a note", func(*cluster) {}, crash, `⚠ no container of pod default/payment-processing-worker-747ccfb9db-pd6wz was OOMKilled`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, tt.pod)
			tt.setup(c)
			f := runActions(t, c.env(), podEvent(event.KindPodOOMKilled, tt.pod, ""), [2]string{"pod_oom_killer_enricher", ""})
			got := text(enrichment(t, f, "pod_oom_killer_enricher"))
			for _, w := range strings.Split(tt.want, "|") {
				if !strings.Contains(got, w) {
					t.Errorf("enrichment lacks %q:\n%s", w, got)
				}
			}
		})
	}
}
