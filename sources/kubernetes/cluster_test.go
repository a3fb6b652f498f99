package kubernetes

import (
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/test/kubeapi"
)

func (h *harness) createJob(j *batchv1.Job) *batchv1.Job {
	h.t.Helper()
	out, err := h.kube.BatchV1().Jobs(j.Namespace).Create(h.ctx(), j, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func failedJob(j *batchv1.Job, at time.Time) *batchv1.Job {
	f := j.DeepCopy()
	f.Status.Failed = 6
	f.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: metav1.NewTime(at)},
		{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded",
			Message: "Job has reached the specified backoff limit", LastTransitionTime: metav1.NewTime(at)},
	}
	return f
}

func TestJobFailureOnTransition(t *testing.T) {
	h := start(t, `
- name: jobs
  triggers:
    - on_job_failure: {labels_selector: "app in (krr, report)"}
  actions: [{create_finding: {}}]
`)
	now := h.clock.Now().Truncate(time.Second)
	cron := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "ops", UID: "uid-cron"}}
	if _, err := h.kube.BatchV1().CronJobs("ops").Create(h.ctx(), cron, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	j := h.createJob(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{
		Name: "nightly-29000000", Namespace: "ops", UID: "uid-job-1", Labels: map[string]string{"app": "report"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: "nightly", UID: "uid-cron", Controller: ptr.To(true)}},
	}})
	other := h.createJob(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: "ops", UID: "uid-job-2", Labels: map[string]string{"app": "other"}}})
	waitHandled(h, "ops", j.Name, func(*batchv1.Job) bool { return true })
	if n := len(h.mem.all()); n != 0 {
		t.Fatalf("%d events for a running job", n)
	}

	if _, err := h.kube.BatchV1().Jobs("ops").UpdateStatus(h.ctx(), failedJob(j, now), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.kube.BatchV1().Jobs("ops").UpdateStatus(h.ctx(), failedJob(other, now), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the job failure event", func() bool { return len(h.mem.of(event.KindJobFailure, j.Name)) == 1 })
	ev := h.mem.of(event.KindJobFailure, j.Name)[0]
	if ev.Title != "Job ops/nightly-29000000 failed (BackoffLimitExceeded)" || ev.Description != "Job has reached the specified backoff limit" {
		t.Errorf("title %q description %q", ev.Title, ev.Description)
	}
	if ev.Labels["owner_kind"] != "CronJob" || ev.Labels["owner_name"] != "nightly" || ev.Labels["job"] != j.Name ||
		ev.Labels[kubeevent.LabelRateLimitSubject] != "ops/CronJob/nightly" {
		t.Errorf("labels %v", ev.Labels)
	}
	// Later writes to the failed job are not a new transition.
	again := failedJob(j, now)
	again.Status.Failed = 7
	if _, err := h.kube.BatchV1().Jobs("ops").UpdateStatus(h.ctx(), again, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitHandled(h, "ops", j.Name, func(j *batchv1.Job) bool { return j.Status.Failed == 7 })
	waitHandled(h, "ops", other.Name, func(j *batchv1.Job) bool { return j.Status.Failed == 6 })
	if n := len(h.mem.all()); n != 1 {
		t.Fatalf("%d events, want 1 (the selector excludes the other job; a rewrite is no transition)", n)
	}
}

func node(name string, ready corev1.ConditionStatus, since time.Time) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{"pool": "general"}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: ready, Reason: map[corev1.ConditionStatus]string{
				corev1.ConditionTrue: "KubeletReady", corev1.ConditionUnknown: "NodeStatusUnknown", corev1.ConditionFalse: "KubeletNotReady"}[ready],
			Message:            "Kubelet stopped posting node status.",
			LastTransitionTime: metav1.NewTime(since),
		}}},
	}
}

func TestNodeNotReadyAfterDuration(t *testing.T) {
	h := start(t, `
- name: nodes
  triggers: [{on_node_not_ready: {duration: 5m}}]
  actions: [{create_finding: {}}]
`)
	now := h.clock.Now().Truncate(time.Second)
	for _, n := range []string{"worker-1", "worker-2"} {
		if _, err := h.kube.CoreV1().Nodes().Create(h.ctx(), node(n, corev1.ConditionTrue, now.Add(-time.Hour)), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"worker-1", "worker-2"} {
		if _, err := h.kube.CoreV1().Nodes().UpdateStatus(h.ctx(), node(n, corev1.ConditionUnknown, now), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 20*time.Second, "both delays to start", func() bool { return h.det.Armed() == 2 })
	h.clock.Step(2 * time.Minute)
	// worker-2 comes back within the duration.
	if _, err := h.kube.CoreV1().Nodes().UpdateStatus(h.ctx(), node("worker-2", corev1.ConditionTrue, h.clock.Now()), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "worker-2's delay to end", func() bool { return h.det.Armed() == 1 })
	h.clock.Step(3*time.Minute + time.Second)
	testkit.Eventually(t, 20*time.Second, "the node event", func() bool { return len(h.mem.of(event.KindNodeNotReady, "worker-1")) == 1 })
	h.settle()
	if n := len(h.mem.all()); n != 1 {
		t.Fatalf("%d events, want 1 (worker-2 recovered in time)", n)
	}
	ev := h.mem.all()[0]
	if ev.Title != "Node worker-1 is not ready (NodeStatusUnknown, for over 5m0s)" || ev.Labels["pool"] != "general" || ev.Labels["not_ready_for"] != "5m0s" ||
		ev.Labels[kubeevent.LabelRateLimitSubject] != "node/worker-1" {
		t.Errorf("title %q labels %v", ev.Title, ev.Labels)
	}
	if ev.Subject.Kind != "Node" || ev.Subject.Name != "worker-1" || ev.Subject.Namespace != "" {
		t.Errorf("subject %+v", ev.Subject)
	}
}

const warningPlaybooks = `
- name: warnings
  triggers:
    - on_kubernetes_warning_event:
        exclude: [ImagePullBackOff]
  actions: [{create_finding: {}}]
- name: scheduling
  triggers:
    - on_kubernetes_warning_event:
        include: [FailedScheduling]
        rate_limit: 0
  actions: [{create_finding: {}}]
`

// Warning events from real describes: one event per occurrence, each
// labelled with its involved object and reason; the engine's rate limit
// (1h by default) makes one finding per object and reason, and a second
// playbook without one still runs for a repeat.
func TestWarningEventsFromDescribeSamples(t *testing.T) {
	h := start(t, warningPlaybooks)
	m := newMatcher(t, warningPlaybooks, h.clock.Now)
	now := h.clock.Now().Truncate(time.Second)
	var all []*corev1.Event
	for _, f := range []string{
		"imagepullbackoff/holmesgpt__04_image_pull_backoff__kubectl_describe.txt",
		"failedscheduling/holmesgpt__12_KubePodNotReady__kubectl_describe.txt",
		"crashloopbackoff/holmesgpt__11_KubePodCrashLooping__kubectl_describe.txt",
	} {
		d, err := kubeapi.LoadDescribe(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, d.WarningEvents(now)...)
	}
	if len(all) != 5 {
		t.Fatalf("%d warning rows in the samples, want 5", len(all))
	}
	for _, e := range all {
		if _, err := h.kube.CoreV1().Events(e.Namespace).Create(h.ctx(), e, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range all {
		waitHandled(h, e.Namespace, e.Name, func(*corev1.Event) bool { return true })
	}
	// ImagePullBackOff sample: "Failed: Failed to pull image …" and "Failed:
	// Error: ErrImagePull" share the pod and reason: two occurrences, one
	// finding (rate limit per involved object and reason); "Failed: Error:
	// ImagePullBackOff" is excluded. FailedScheduling and the crash loop's
	// BackOff: one each.
	published := h.mem.of(event.KindKubernetesWarningEvent, "")
	findings := map[string]int{}
	for i, f := range m.run(published...) {
		if f != nil {
			findings[published[i].Labels["reason"]+" "+published[i].Subject.Name]++
		}
	}
	want := map[string]int{
		"Failed customer-relations-webapp-5d98ffcfd-tz4nc":         1,
		"FailedScheduling user-profile-resources-659d4dd659-cq4kq": 1,
		"BackOff payment-processing-worker-747ccfb9db-pd6wz":       1,
	}
	if len(published) != 4 || h.mem.duplicates() != 0 {
		t.Errorf("%d warning events published (%d duplicates), want 4 occurrences and 0", len(published), h.mem.duplicates())
	}
	if fmt.Sprint(findings) != fmt.Sprint(want) {
		t.Errorf("findings by reason and object: %v, want %v", findings, want)
	}
	for _, ev := range h.mem.of(event.KindKubernetesWarningEvent, "") {
		if strings.Contains(ev.Annotations["message"], "ImagePullBackOff") {
			t.Errorf("excluded event published: %s", ev.Title)
		}
		if ev.Labels["reason"] == "BackOff" {
			if ev.Subject.Container != "payment-processing-container" || ev.Labels["count"] != "206" || ev.Labels["source_component"] != "kubelet" {
				t.Errorf("BackOff event subject %+v labels %v", ev.Subject, ev.Labels)
			}
			if !strings.HasPrefix(ev.Title, "Warning BackOff on Pod default/payment-processing-worker-747ccfb9db-pd6wz: Back-off restarting failed container") {
				t.Errorf("title %q", ev.Title)
			}
		}
	}

	// The scheduler repeats itself (count 71): a new occurrence. The first
	// playbook's rate limit holds it back; the second has none and fires.
	var sched *corev1.Event
	for _, e := range all {
		if e.Reason == "FailedScheduling" {
			sched = e.DeepCopy()
		}
	}
	sched.Count++
	sched.LastTimestamp = metav1.NewTime(now.Add(time.Second))
	if _, err := h.kube.CoreV1().Events(sched.Namespace).Update(h.ctx(), sched, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the repeated event", func() bool { return len(h.mem.of(event.KindKubernetesWarningEvent, sched.InvolvedObject.Name)) == 2 })
	repeat := h.mem.of(event.KindKubernetesWarningEvent, sched.InvolvedObject.Name)[1]
	if repeat.Labels["count"] != "71" || repeat.Labels[kubeevent.LabelRateLimitSubject] != h.mem.of(event.KindKubernetesWarningEvent, sched.InvolvedObject.Name)[0].Labels[kubeevent.LabelRateLimitSubject] {
		t.Fatalf("repeat: labels %v (want count 71, the first occurrence's rate-limit subject)", repeat.Labels)
	}
	f := m.run(repeat)[0]
	if f == nil || fmt.Sprint(f.Playbooks) != "[scheduling]" {
		t.Errorf("repeat: finding %v, want one from the scheduling playbook only (warnings is rate-limited)", f)
	}
}
