package kube

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/medichq/medic/event"
)

// Every row of workloadKinds is reachable from an event about such a
// workload: related_pods lists its pods (and only those its selector
// picks), the pod actions find its least healthy pod, and a row with a
// status enricher renders the workload under the kind's title. A kind
// added to the table without an object here fails the test.
func TestWorkloadKinds(t *testing.T) {
	t.Parallel()
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "w"}}
	meta := metav1.ObjectMeta{Namespace: "shop", Name: "w", Generation: 1}
	objects := map[string]runtime.Object{
		"Deployment":  &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Selector: sel}},
		"StatefulSet": &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Selector: sel}},
		"DaemonSet":   &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{Selector: sel}},
		"ReplicaSet":  &appsv1.ReplicaSet{ObjectMeta: meta, Spec: appsv1.ReplicaSetSpec{Selector: sel}},
		// No selector: the job's pods are found by their job-name label.
		"Job": &batchv1.Job{ObjectMeta: meta},
	}
	if len(objects) != len(workloadKinds) {
		t.Fatalf("%d objects for %d workload kinds: give each kind one here", len(objects), len(workloadKinds))
	}
	for _, k := range workloadKinds {
		t.Run(k.kind, func(t *testing.T) {
			t.Parallel()
			obj, ok := objects[k.kind]
			if !ok {
				t.Fatalf("no object for kind %s", k.kind)
			}
			podLabels := sel.MatchLabels
			if k.kind == "Job" {
				podLabels = map[string]string{"job-name": "w"}
			}
			mine := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "w-1", Labels: podLabels},
				Status: corev1.PodStatus{Phase: corev1.PodRunning}}
			other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "other", Labels: map[string]string{"app": "x"}}}
			c := newCluster(t, obj, mine, other)
			ev := &event.Event{ID: "e", Kind: event.Kind("test"), Status: event.StatusFiring,
				Subject: event.Subject{Kind: k.kind, Namespace: "shop", Name: "w"}, StartsAt: sampleBase}

			steps := [][2]string{{"related_pods", ""}, {"pod_status_enricher", ""}}
			if k.enricher != "" {
				steps = append(steps, [2]string{k.enricher, ""})
			}
			f := runActions(t, c.env(), ev, steps...)

			related := text(enrichment(t, f, "related_pods"))
			if want := "Pods of " + strings.ToLower(k.kind) + " shop/w (1)"; !strings.Contains(related, want) {
				t.Errorf("related_pods: want %q in\n%s", want, related)
			}
			if !strings.Contains(related, "shop/w-1") || strings.Contains(related, "shop/other") {
				t.Errorf("related_pods lists other pods than the workload's:\n%s", related)
			}
			if got := enrichment(t, f, "pod_status_enricher").Title; got != "Pod shop/w-1" {
				t.Errorf("pod_status_enricher is about %q, want the workload's pod shop/w-1", got)
			}
			if k.enricher == "" {
				return
			}
			st := enrichment(t, f, k.enricher)
			if want := k.kind + " shop/w"; st.Title != want || len(st.Blocks) == 0 || strings.HasPrefix(st.Blocks[0].Markdown, "⚠") {
				t.Errorf("%s: title %q (want %q), blocks %+v", k.enricher, st.Title, want, st.Blocks)
			}
		})
	}
}

// Each status enricher in the table is registered under its name with the
// row's help, which is what the docs and the schema show.
func TestStatusEnrichersRegistered(t *testing.T) {
	t.Parallel()
	docs := map[string]string{}
	for _, d := range registered.Definitions() {
		docs[d.Name] = d.Doc
	}
	n := 0
	for _, k := range workloadKinds {
		if k.enricher == "" {
			continue
		}
		n++
		if docs[k.enricher] != k.help || k.help == "" {
			t.Errorf("%s: registered doc %q, want the row's help %q", k.enricher, docs[k.enricher], k.help)
		}
	}
	if n != 3 {
		t.Errorf("%d status enrichers in the table, want deployment, statefulset and daemonset", n)
	}
}
