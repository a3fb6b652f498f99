package kubernetes

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
)

func widget(name string, size int64) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1",
		"kind":       "Widget",
		"metadata":   map[string]any{"name": name, "namespace": "shop", "uid": "uid-" + name, "labels": map[string]any{"team": "cart"}},
		"spec":       map[string]any{"size": size},
	}}
	return u
}

// A custom resource (a CRD's objects) watched through the dynamic client.
func TestResourceTriggerOnCustomResource(t *testing.T) {
	dyn := newDynamic()
	h := start(t, `
- name: widget-changes
  triggers:
    - on_kubernetes_resource:
        resource: example.com/v1/widgets
        operations: [create, update]
        labels_selector: team=cart
  actions: [{create_finding: {}}]
- name: widget-status
  triggers:
    - on_kubernetes_resource:
        resource: example.com/v1/widgets
        operations: [update]
        include_status_changes: true
  actions: [{create_finding: {}}]
`, withDynamic(dyn))
	ctx := h.ctx()
	res := dyn.Resource(widgetGVR).Namespace("shop")

	w, err := res.Create(ctx, widget("w1", 1), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the create event", func() bool { return len(h.mem.of(event.KindKubernetesResource, "w1")) == 1 })
	ev := h.mem.of(event.KindKubernetesResource, "w1")[0]
	if ev.Title != "Widget shop/w1 created" || ev.Labels["operation"] != "create" || ev.Labels["resource"] != "example.com/v1/widgets" || ev.Labels["team"] != "cart" {
		t.Errorf("title %q labels %v", ev.Title, ev.Labels)
	}

	// A status-only update: only the playbook that asks for status changes.
	st := w.DeepCopy()
	_ = unstructured.SetNestedField(st.Object, "Ready", "status", "phase")
	if w, err = res.UpdateStatus(ctx, st, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the status event", func() bool { return len(h.mem.of(event.KindKubernetesResource, "w1")) == 2 })
	status := h.mem.of(event.KindKubernetesResource, "w1")[1]
	if status.Labels["changed"] != "status" || status.Title != "Widget shop/w1 updated (status)" {
		t.Errorf("status update: title %q changed %q", status.Title, status.Labels["changed"])
	}
	trs := kubeTriggers(t, `
- {name: a, triggers: [{on_kubernetes_resource: {resource: example.com/v1/widgets}}], actions: [{create_finding: {}}]}
`)
	if trs[0].Match(&status) {
		t.Error("the default change filter matched a status-only update")
	}

	// A metadata-only update (a label): ignored by both.
	md := w.DeepCopy()
	md.SetAnnotations(map[string]string{"note": "x"})
	if w, err = res.Update(ctx, md, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitHandled(h, "shop", "w1", func(u *unstructured.Unstructured) bool { return u.GetAnnotations()["note"] == "x" })
	if n := len(h.mem.of(event.KindKubernetesResource, "w1")); n != 2 {
		t.Fatalf("%d events after a metadata-only update, want 2", n)
	}

	// A spec change: the first playbook.
	sp := w.DeepCopy()
	_ = unstructured.SetNestedField(sp.Object, int64(3), "spec", "size")
	if _, err = res.Update(ctx, sp, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the spec event", func() bool { return len(h.mem.of(event.KindKubernetesResource, "w1")) == 3 })
	if got := h.mem.of(event.KindKubernetesResource, "w1")[2]; got.Labels["changed"] != "spec" {
		t.Errorf("spec update changed=%q", got.Labels["changed"])
	}

	// Delete is not among the operations.
	testkit.Eventually(t, 20*time.Second, "the spec update to be handled", func() bool { return h.timesHandled(&unstructured.Unstructured{}, "shop", "w1") == 4 })
	if err := res.Delete(ctx, "w1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the delete to be handled", func() bool { return h.timesHandled(&unstructured.Unstructured{}, "shop", "w1") == 5 })
	h.settle()
	if n := len(h.mem.of(event.KindKubernetesResource, "w1")); n != 3 {
		t.Fatalf("%d events after a delete nobody asked for, want 3", n)
	}
}

func TestResourceWatchStopsWhenNoTriggerNamesIt(t *testing.T) {
	dyn := newDynamic()
	h := start(t, `
- {name: w, triggers: [{on_kubernetes_resource: {resource: example.com/v1/widgets, operations: [delete]}}], actions: [{create_finding: {}}]}
`, withDynamic(dyn))
	h.det.mu.Lock()
	n := len(h.det.dyn)
	h.det.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d resource watches, want 1", n)
	}
	h.det.SetInterest(kubeInterest(t, "- {name: c, triggers: [{on_pod_crash_loop: {}}], actions: [{create_finding: {}}]}"))
	h.det.mu.Lock()
	n = len(h.det.dyn)
	h.det.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d resource watches after the trigger went, want 0", n)
	}
}
