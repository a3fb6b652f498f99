package kubernetes

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/test/kubeapi"
)

const crashLoopPlaybook = `
- name: crashloop
  triggers:
    - on_pod_crash_loop: {}
  actions:
    - create_finding: {}
`

// deployment creates a Deployment and its ReplicaSet in the fake API so the
// detector can resolve pod → ReplicaSet → Deployment.
func (h *harness) deployment(ns, name, rsName string) {
	h.t.Helper()
	d, err := h.kube.AppsV1().Deployments(ns).Create(h.ctx(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-deploy-" + name)},
	}, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	_, err = h.kube.AppsV1().ReplicaSets(ns).Create(h.ctx(), &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{
		Name: rsName, Namespace: ns, UID: types.UID("uid-rs-" + rsName),
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: ptr.To(true)}},
	}}, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	testkit.Eventually(h.t, 20*time.Second, "the ReplicaSet in the cache", func() bool { return h.det.cached(ns, "replicasets", rsName) != nil })
}

// runningCopy is the pod before it failed: its containers running, no restarts.
func runningCopy(p *corev1.Pod, now time.Time) *corev1.Pod {
	r := p.DeepCopy()
	r.Status.Phase = corev1.PodRunning
	r.Status.Reason, r.Status.Message = "", ""
	for i := range r.Status.ContainerStatuses {
		cs := &r.Status.ContainerStatuses[i]
		cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(now)}}
		cs.LastTerminationState = corev1.ContainerState{}
		cs.RestartCount = 0
		cs.Ready = true
	}
	return r
}

func withRestarts(p *corev1.Pod, n int32, now time.Time) *corev1.Pod {
	c := p.DeepCopy()
	cs := &c.Status.ContainerStatuses[0]
	cs.RestartCount = n
	cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reasonCrashLoopBackOff, Message: "back-off 5m0s restarting failed container"}}
	if cs.LastTerminationState.Terminated == nil {
		cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1}
	}
	cs.LastTerminationState.Terminated.FinishedAt = metav1.NewTime(now.Truncate(time.Second))
	return c
}

// The detector publishes every crash-loop occurrence of a Deployment's
// pods, each labelled with the workload; the engine, applying
// on_pod_crash_loop's rate limit (4h by default) per that label, makes one
// finding of them per window.
func TestCrashLoopFromSamplesFiresOncePerWorkload(t *testing.T) {
	h := start(t, crashLoopPlaybook)
	m := newMatcher(t, crashLoopPlaybook, h.clock.Now)
	now := h.clock.Now()

	// A pod of a Deployment, from a `kubectl describe` of a real crash loop:
	// CrashLoopBackOff after 14 restarts, last exit code 0.
	desc, err := kubeapi.LoadDescribe("crashloopbackoff/holmesgpt__11_KubePodCrashLooping__kubectl_describe.txt")
	if err != nil {
		t.Fatal(err)
	}
	h.deployment(desc.Namespace, "payment-processing-worker", "payment-processing-worker-747ccfb9db")
	failing := desc.Pod("uid-payment-1", now)
	failing.OwnerReferences[0].UID = "uid-rs-payment-processing-worker-747ccfb9db"
	created := h.createPod(runningCopy(failing, now))
	failing.ResourceVersion = created.ResourceVersion
	h.updatePodStatus(failing)

	testkit.Eventually(t, 20*time.Second, "the crash loop event", func() bool { return len(h.mem.of(event.KindPodCrashLoop, desc.Name)) == 1 })
	ev := h.mem.of(event.KindPodCrashLoop, desc.Name)[0]
	want := "Pod default/payment-processing-worker-747ccfb9db-pd6wz container payment-processing-container is crash looping (restarted 14 times, last exit code 0 (Completed))"
	if ev.Title != want {
		t.Errorf("title\n got %q\nwant %q", ev.Title, want)
	}
	for k, v := range map[string]string{
		"namespace": "default", "pod": desc.Name, "container": "payment-processing-container",
		"reason": "CrashLoopBackOff", "restart_count": "14", "exit_code": "0", "node": "kind-control-plane",
		"owner_kind": "Deployment", "owner_name": "payment-processing-worker", "app": "payment-processing-worker",
		kubeevent.LabelRateLimitSubject: "default/Deployment/payment-processing-worker",
	} {
		if ev.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, ev.Labels[k], v)
		}
	}
	if ev.Source != kubeevent.Source || ev.Subject != (event.Subject{Kind: "Pod", Namespace: "default", Name: desc.Name, Container: "payment-processing-container", Node: "kind-control-plane"}) {
		t.Errorf("source %q subject %+v", ev.Source, ev.Subject)
	}
	if !strings.Contains(string(ev.Raw), `"kind":"Pod"`) || strings.Contains(string(ev.Raw), "managedFields") {
		t.Errorf("raw is not the pod without managedFields: %.200s", ev.Raw)
	}

	// More restarts of the same pod, and a second pod of the same Deployment
	// crash looping: three occurrences, each published once, one finding
	// within the rate limit (per workload).
	p := withRestarts(failing, 15, now)
	h.updatePodStatus(p)
	second := failing.DeepCopy()
	second.Name, second.UID, second.ResourceVersion = desc.Name+"-b", "uid-payment-2", ""
	h.createPod(second)
	h.waitPod(desc.Namespace, second.Name, func(*corev1.Pod) bool { return true })
	h.waitPod(desc.Namespace, desc.Name, func(p *corev1.Pod) bool { return p.Status.ContainerStatuses[0].RestartCount == 15 })
	evs := h.mem.of(event.KindPodCrashLoop, "")
	if len(evs) != 3 || h.mem.duplicates() != 0 {
		t.Fatalf("%d crash loop events published (%d duplicates), want 3 occurrences and 0", len(evs), h.mem.duplicates())
	}
	for _, ev := range evs {
		if got := ev.Labels[kubeevent.LabelRateLimitSubject]; got != "default/Deployment/payment-processing-worker" {
			t.Errorf("%s: rate-limit subject %q, want the Deployment", ev.Subject.Name, got)
		}
	}
	findings := m.run(evs...)
	if findings[0] == nil || findings[1] != nil || findings[2] != nil {
		t.Fatalf("findings %v, want one, for the first occurrence", findings)
	}
	// Redelivered, each event gets the answer it got.
	if again := m.run(evs...); again[0] == nil || again[1] != nil || again[2] != nil {
		t.Errorf("redelivered: findings %v, want the first only", again)
	}

	// After the window, the next restart of the workload fires again.
	h.clock.Step(4*time.Hour + time.Minute)
	h.updatePodStatus(withRestarts(p, 16, h.clock.Now()))
	testkit.Eventually(t, 20*time.Second, "the crash loop event after the window", func() bool { return len(h.mem.of(event.KindPodCrashLoop, "")) == 4 })
	after := h.mem.of(event.KindPodCrashLoop, "")[3]
	if got := after.Labels["restart_count"]; got != "16" {
		t.Errorf("fourth event restart_count = %s, want 16", got)
	}
	if f := m.run(after); f[0] == nil {
		t.Error("the window passed but the engine held the crash loop back")
	}
}

func TestCrashLoopBarePodAndThresholds(t *testing.T) {
	h := start(t, crashLoopPlaybook)
	now := h.clock.Now()
	// gitops-engine's Pod YAML: no owner, 3 restarts, CrashLoopBackOff, exit 1.
	p, err := kubeapi.LoadPodYAML("crashloopbackoff/gitops-engine__pod-crashloop.yaml", now)
	if err != nil {
		t.Fatal(err)
	}
	once := withRestarts(p, 1, now) // below restart_count (2): no event
	created := h.createPod(runningCopy(p, now))
	once.ResourceVersion = created.ResourceVersion
	h.updatePodStatus(once)
	h.waitPod(p.Namespace, p.Name, func(p *corev1.Pod) bool { return p.Status.ContainerStatuses[0].RestartCount == 1 })
	if n := len(h.mem.all()); n != 0 {
		t.Fatalf("%d events for one restart, want 0", n)
	}
	h.updatePodStatus(p) // the sample as it is: 3 restarts
	testkit.Eventually(t, 20*time.Second, "the crash loop event", func() bool { return len(h.mem.of(event.KindPodCrashLoop, "my-pod")) == 1 })
	ev := h.mem.of(event.KindPodCrashLoop, "my-pod")[0]
	if ev.Labels["owner_kind"] != "Pod" || ev.Labels["owner_name"] != "my-pod" || ev.Labels["restart_count"] != "3" || ev.Labels["exit_code"] != "1" {
		t.Errorf("labels %v", ev.Labels)
	}
	if !strings.Contains(ev.Description, "Back-off 40s restarting failed container=main") {
		t.Errorf("description %q", ev.Description)
	}
}

func TestOOMKilledFromSamples(t *testing.T) {
	const book = `
- name: oom-pods
  triggers:
    - on_pod_oom_killed:
        exclude: [{namespace: kube-system}]
  actions: [{create_finding: {}}]
- name: oom-containers
  triggers:
    - on_container_oom_killed: {rate_limit: 0}
  actions: [{create_finding: {}}]
`
	h := start(t, book)
	now := h.clock.Now()
	desc, err := kubeapi.LoadDescribe("oomkilled/holmesgpt__01_oom_kill__kubectl_describe.txt")
	if err != nil {
		t.Fatal(err)
	}
	h.deployment(desc.Namespace, "analytics-exporter-fast", "analytics-exporter-fast-76897854c")
	oom := desc.Pod("uid-oom-1", now)
	oom.OwnerReferences[0].UID = "uid-rs-analytics-exporter-fast-76897854c"
	created := h.createPod(runningCopy(oom, now))
	oom.ResourceVersion = created.ResourceVersion
	h.updatePodStatus(oom)
	testkit.Eventually(t, 20*time.Second, "both OOM events", func() bool {
		return len(h.mem.of(event.KindPodOOMKilled, desc.Name)) == 1 && len(h.mem.of(event.KindContainerOOMKilled, desc.Name)) == 1
	})
	ev := h.mem.of(event.KindPodOOMKilled, desc.Name)[0]
	want := "Pod default/analytics-exporter-fast-76897854c-cw5wh container memory-eater was OOMKilled (memory limit 100Mi, exit code 137)"
	if ev.Title != want {
		t.Errorf("title\n got %q\nwant %q", ev.Title, want)
	}
	if ev.Labels["owner_kind"] != "Deployment" || ev.Labels["memory_limit"] != "100Mi" || ev.Labels["exit_code"] != "137" {
		t.Errorf("labels %v", ev.Labels)
	}
	if c := h.mem.of(event.KindContainerOOMKilled, desc.Name)[0]; c.Subject.Kind != "Container" || c.Subject.Container != "memory-eater" || c.ID == ev.ID {
		t.Errorf("container event subject %+v id %s (pod event %s)", c.Subject, c.ID, ev.ID)
	}

	// The same kill seen again (another status write) is the same occurrence.
	again := oom.DeepCopy()
	again.Status.Conditions = append(again.Status.Conditions, corev1.PodCondition{Type: "Ready", Status: "False"})
	h.updatePodStatus(again)
	h.waitPod(oom.Namespace, oom.Name, func(p *corev1.Pod) bool { return len(p.Status.Conditions) == 1 })
	if n := len(h.mem.all()); n != 2 {
		t.Fatalf("%d events after the same kill was written again, want 2", n)
	}

	// is-healthy's OOMKilled pod in kube-system: excluded for pod events,
	// reported for container events.
	p, err := kubeapi.LoadPodYAML("oomkilled/is-healthy__oomkilled-unhealthy.yaml", now)
	if err != nil {
		t.Fatal(err)
	}
	p.Namespace = "kube-system"
	// The sample's kill happened 2h before its newest timestamp; move it to
	// now (the max_event_age test below keeps the 2h).
	p.Status.ContainerStatuses[0].LastTerminationState.Terminated.FinishedAt = metav1.NewTime(now.Truncate(time.Second))
	created = h.createPod(runningCopy(p, now))
	p.ResourceVersion = created.ResourceVersion
	h.updatePodStatus(p)
	testkit.Eventually(t, 20*time.Second, "the container OOM event", func() bool { return len(h.mem.of(event.KindContainerOOMKilled, "oomkilled-pod")) == 1 })
	h.settle()
	if n := len(h.mem.of(event.KindPodOOMKilled, "oomkilled-pod")); n != 0 {
		t.Errorf("%d pod OOM events for an excluded namespace", n)
	}
	if got := h.mem.of(event.KindContainerOOMKilled, "oomkilled-pod")[0].Description; got != "system has run out of memory" {
		t.Errorf("description %q", got)
	}
}

func TestOldTransitionsAreNotReported(t *testing.T) {
	// is-healthy's sample as it is: the OOM kill finished 2h ago, which is
	// older than max_event_age (1h by default): history, not news.
	h := start(t, "- {name: oom, triggers: [{on_pod_oom_killed: {}}], actions: [{create_finding: {}}]}")
	now := h.clock.Now()
	p, err := kubeapi.LoadPodYAML("oomkilled/is-healthy__oomkilled-unhealthy.yaml", now)
	if err != nil {
		t.Fatal(err)
	}
	if age := now.Sub(p.Status.ContainerStatuses[0].LastTerminationState.Terminated.FinishedAt.Time); age < time.Hour+50*time.Minute {
		t.Fatalf("the sample's kill is %v old; the test needs about 2h", age)
	}
	h.createPod(p)
	h.waitPod(p.Namespace, p.Name, func(*corev1.Pod) bool { return true })
	if n := len(h.mem.all()); n != 0 {
		t.Fatalf("%d events for a 2h-old kill", n)
	}
	if !strings.Contains(h.logs.String(), "not reporting an old transition") {
		t.Error("the skip is not logged")
	}
}

func TestImagePullBackoffFireDelay(t *testing.T) {
	h := start(t, `
- name: pulls
  triggers: [{on_image_pull_backoff: {}}]
  actions: [{create_finding: {}}]
`)
	now := h.clock.Now()
	// gitops-engine's pod in ImagePullBackOff, and holmesgpt's describe of a
	// pod in ErrImagePull.
	stuck, err := kubeapi.LoadPodYAML("imagepullbackoff/gitops-engine__pod-imagepullbackoff.yaml", now)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := kubeapi.LoadDescribe("imagepullbackoff/holmesgpt__04_image_pull_backoff__kubectl_describe.txt")
	if err != nil {
		t.Fatal(err)
	}
	recovers := desc.Pod("uid-recovers", now)
	recovers.OwnerReferences = nil

	h.createPod(stuck)
	testkit.Eventually(t, 20*time.Second, "the first delay to start", func() bool { return h.det.Armed() == 1 })
	created := h.createPod(recovers)
	testkit.Eventually(t, 20*time.Second, "the second delay to start", func() bool { return h.det.Armed() == 2 })

	// One minute in, the second pod pulls its image after all.
	h.clock.Step(time.Minute)
	ok := runningCopy(recovers, h.clock.Now())
	ok.ResourceVersion = created.ResourceVersion
	h.updatePodStatus(ok)
	testkit.Eventually(t, 20*time.Second, "the recovered pod's delay to end", func() bool { return h.det.Armed() == 1 })

	// Past fire_delay (120s): the stuck pod fires, the recovered one stays quiet.
	h.clock.Step(61 * time.Second)
	testkit.Eventually(t, 20*time.Second, "the image pull event", func() bool { return len(h.mem.of(event.KindImagePullBackoff, stuck.Name)) == 1 })
	h.settle()
	if n := len(h.mem.of(event.KindImagePullBackoff, recovers.Name)); n != 0 {
		t.Fatalf("%d events for a pull that recovered within fire_delay", n)
	}
	ev := h.mem.of(event.KindImagePullBackoff, stuck.Name)[0]
	want := `Pod default/guestbook-ui-errimagepullbackoff-66cfffb669-45w2j container errimagepullbackoff cannot pull image gcr.io/heptio-images/ks-guestbook-demo:0.3 (ImagePullBackOff for over 2m0s)`
	if ev.Title != want {
		t.Errorf("title\n got %q\nwant %q", ev.Title, want)
	}
	if ev.Labels["fire_delay"] != "2m0s" || ev.Labels["image"] != "gcr.io/heptio-images/ks-guestbook-demo:0.3" {
		t.Errorf("labels %v", ev.Labels)
	}
	if !strings.Contains(ev.Description, `Back-off pulling image "gcr.io/heptio-images/ks-guestbook-demo:0.3"`) {
		t.Errorf("description %q", ev.Description)
	}

	// Still stuck ten minutes later: nothing new (once per spell).
	h.updatePodStatus(stuck)
	h.clock.Step(10 * time.Minute)
	h.settle()
	if n := len(h.mem.of(event.KindImagePullBackoff, "")); n != 1 {
		t.Fatalf("%d image pull events, want 1", n)
	}
}

func TestEvictedPod(t *testing.T) {
	h := start(t, "- {name: evicted, triggers: [{on_pod_evicted: {}}], actions: [{create_finding: {}}]}")
	now := h.clock.Now()
	p, err := kubeapi.LoadPodYAML("crashloopbackoff/gitops-engine__pod-crashloop.yaml", now)
	if err != nil {
		t.Fatal(err)
	}
	created := h.createPod(runningCopy(p, now))
	ev := created.DeepCopy()
	ev.Status.Phase = corev1.PodFailed
	ev.Status.Reason = "Evicted"
	ev.Status.Message = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91440Ki."
	ev.Status.Conditions = append(ev.Status.Conditions, corev1.PodCondition{
		Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "TerminationByKubelet", LastTransitionTime: metav1.NewTime(now),
	})
	h.updatePodStatus(ev)
	testkit.Eventually(t, 20*time.Second, "the eviction event", func() bool { return len(h.mem.of(event.KindPodEvicted, p.Name)) == 1 })
	got := h.mem.of(event.KindPodEvicted, p.Name)[0]
	if got.Title != "Pod argocd/my-pod was evicted from node minikube" || !strings.Contains(got.Description, "low on resource: memory") {
		t.Errorf("title %q description %q", got.Title, got.Description)
	}
	ev2 := ev.DeepCopy()
	ev2.Status.Message += " Container main was using 120Mi."
	h.updatePodStatus(ev2)
	h.waitPod(p.Namespace, p.Name, func(p *corev1.Pod) bool { return strings.Contains(p.Status.Message, "120Mi") })
	if n := len(h.mem.of(event.KindPodEvicted, "")); n != 1 {
		t.Fatalf("%d eviction events, want 1", n)
	}
}
