package kubernetes

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/test/kubeapi"
)

const everyTrigger = `
- name: all
  triggers:
    - on_pod_crash_loop: {}
    - on_pod_oom_killed: {}
    - on_job_failure: {}
    - on_kubernetes_warning_event: {}
    - on_pod_evicted: {}
  actions: [{create_finding: {}}]
`

// failures creates, through the API, one object in each of several failure
// states. The returned func waits until a detector has handled them all.
func failures(t *testing.T, h *harness) func(*harness) {
	t.Helper()
	now := h.clock.Now()
	crash, err := kubeapi.LoadPodYAML("crashloopbackoff/gitops-engine__pod-crashloop.yaml", now)
	if err != nil {
		t.Fatal(err)
	}
	c := h.createPod(runningCopy(crash, now))
	crash.ResourceVersion = c.ResourceVersion
	h.updatePodStatus(crash)

	oomDesc, err := kubeapi.LoadDescribe("oomkilled/holmesgpt__02_what_is_wrong_with_pod__kubectl_describe.txt")
	if err != nil {
		t.Fatal(err)
	}
	oom := oomDesc.Pod("uid-narwhal", now)
	oom.OwnerReferences = nil
	o := h.createPod(runningCopy(oom, now))
	oom.ResourceVersion = o.ResourceVersion
	h.updatePodStatus(oom)

	j := h.createJob(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "backup", Namespace: "ops", UID: "uid-backup"}})
	if _, err := h.kube.BatchV1().Jobs("ops").UpdateStatus(h.ctx(), failedJob(j, now.Truncate(time.Second)), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	sched, err := kubeapi.LoadDescribe("failedscheduling/holmesgpt__24a_misconfigured_pvc__kubectl_describe.txt")
	if err != nil {
		t.Fatal(err)
	}
	evs := sched.WarningEvents(now)
	for _, e := range evs {
		if _, err := h.kube.CoreV1().Events(e.Namespace).Create(h.ctx(), e, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return func(h *harness) {
		waitHandled(h, crash.Namespace, crash.Name, func(p *corev1.Pod) bool { return p.Status.ContainerStatuses[0].State.Waiting != nil })
		waitHandled(h, oom.Namespace, oom.Name, func(p *corev1.Pod) bool { return p.Status.ContainerStatuses[0].LastTerminationState.Terminated != nil })
		waitHandled(h, j.Namespace, j.Name, func(j *batchv1.Job) bool { return len(j.Status.Conditions) > 0 })
		for _, e := range evs {
			waitHandled(h, e.Namespace, e.Name, func(*corev1.Event) bool { return true })
		}
	}
}

// The restarted detector lists the same cluster and publishes nothing: its
// state (JetStream KV) knows what was reported, even past JetStream's own
// duplicate window.
func TestRestartDoesNotRefire(t *testing.T) {
	dir := t.TempDir()
	clk := clocktesting.NewFakeClock(time.Now())
	kc := fake.NewClientset()
	b1 := openBus(t, dir)
	st1, err := OpenKVState(context.Background(), b1.JetStream(), 24*time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	h1 := start(t, everyTrigger, withKube(kc), withClock(clk), withState(st1), withPublisher(b1))
	handled := failures(t, h1)
	handled(h1)
	// The gitops-engine crash loop, the narwhal's OOM kill and its crash
	// loop, the failed job, the FailedScheduling event.
	if n := h1.det.Published(); n != 5 {
		t.Fatalf("the first detector published %d events, want 5", n)
	}
	if n := streamMsgs(t, b1); n != 5 {
		t.Fatalf("%d events stored, want 5", n)
	}
	h1.det.Stop()
	b1.Close()

	// Restart: JetStream on the same store, a new detector, half an hour
	// later (past the bus's duplicate window, within max_event_age).
	clk.Step(30 * time.Minute)
	b2 := openBus(t, dir)
	st2, err := OpenKVState(context.Background(), b2.JetStream(), 24*time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	h2 := start(t, everyTrigger, withKube(kc), withClock(clk), withState(st2), withPublisher(b2))
	handled(h2)
	if n := h2.det.Published(); n != 0 {
		t.Fatalf("the restarted detector published %d events, want 0", n)
	}
	if n := streamMsgs(t, b2); n != 5 {
		t.Fatalf("%d events stored after the restart, want 5", n)
	}

	// It still reports what is new: the crash loop's next restart (whether
	// a playbook runs for it is the engine's rate limit's to say).
	crash := h2.lastSeen(&corev1.Pod{}, "argocd", "my-pod").(*corev1.Pod).DeepCopy()
	h2.updatePodStatus(withRestarts(crash, 9, clk.Now()))
	testkit.Eventually(t, 20*time.Second, "a new crash loop event after the restart", func() bool { return h2.det.Published() == 1 })
}

// Two replicas watching the same cluster and sharing JetStream store one
// event per occurrence: they compute the same IDs (and the same labels, so
// the engine's rate limits count them alike).
func TestTwoReplicasPublishOneEvent(t *testing.T) {
	dir := t.TempDir()
	clk := clocktesting.NewFakeClock(time.Now())
	kc := fake.NewClientset()
	b := openBus(t, dir)
	st, err := OpenKVState(context.Background(), b.JetStream(), 24*time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	pub := &countingPublisher{next: b, ids: map[string]int{}}
	h1 := start(t, everyTrigger, withKube(kc), withClock(clk), withState(st), withPublisher(pub))
	h2 := start(t, everyTrigger, withKube(kc), withClock(clk), withState(st), withPublisher(pub))
	handled := failures(t, h1)
	handled(h1)
	handled(h2)
	if n := streamMsgs(t, b); n != 5 {
		t.Fatalf("%d events stored by two replicas, want 5", n)
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if len(pub.ids) != 5 || pub.stored != 5 {
		t.Fatalf("%d distinct IDs, %d stored, %d duplicates; want 5 and 5", len(pub.ids), pub.stored, pub.dups)
	}
	t.Logf("two replicas: %d publishes, %d stored, %d dropped by JetStream as duplicates", pub.stored+pub.dups, pub.stored, pub.dups)
}

type countingPublisher struct {
	next         event.Publisher
	mu           sync.Mutex
	stored, dups int
	ids          map[string]int
}

func (c *countingPublisher) Publish(ctx context.Context, evs []event.Event) (event.PublishResult, error) {
	res, err := c.next.Publish(ctx, evs)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stored += res.Stored
	c.dups += res.Duplicates
	for _, ev := range evs {
		c.ids[ev.ID]++
	}
	return res, err
}

// Two replicas' states over one bucket agree on episodes and on what was
// reported. (The rate-limit claims in the same bucket are the engine's:
// bus/triggerstate tests them.)
func TestKVStateIsShared(t *testing.T) {
	b := openBus(t, t.TempDir())
	ctx := context.Background()
	a, err := OpenKVState(ctx, b.JetStream(), time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	other, err := OpenKVState(ctx, b.JetStream(), time.Hour, 1) // a second replica
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	t1, _ := a.FirstSeen(ctx, "p", now)
	t2, _ := other.FirstSeen(ctx, "p", now.Add(time.Minute))
	if !t1.Equal(t2) {
		t.Errorf("first seen differs between replicas: %v and %v", t1, t2)
	}
	if err := a.Forget(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if t3, _ := other.FirstSeen(ctx, "p", now.Add(2*time.Minute)); !t3.Equal(now.Add(2 * time.Minute)) {
		t.Errorf("after Forget a new spell starts now, got %v", t3)
	}
	if seen, _ := a.Seen(ctx, "x"); seen {
		t.Error("seen before marked")
	}
	if err := other.MarkSeen(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if seen, _ := a.Seen(ctx, "x"); !seen {
		t.Error("not seen after the other replica marked it")
	}
}

// A missing permission is a clear log line naming the verb and resource,
// and WaitForSync says which informer could not list.
func TestForbiddenListIsReportedClearly(t *testing.T) {
	kc := fake.NewClientset()
	kc.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "",
			errors.New(`User "system:serviceaccount:medic:medic" cannot list resource "pods" in API group "" at the cluster scope`))
	})
	logs := &testkit.SyncBuffer{}
	det, err := NewDetector(Options{Kube: kc, Publisher: &memPublisher{}, Logger: newLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	det.SetInterest(kubeInterest(t, crashLoopPlaybook))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := det.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer det.Stop()
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	defer wcancel()
	err = det.WaitForSync(wctx)
	if err == nil || !strings.Contains(err.Error(), "pods/") || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("WaitForSync: %v", err)
	}
	testkit.Eventually(t, 20*time.Second, "the log line", func() bool { return strings.Contains(logs.String(), `missing="list, watch pods"`) })
	if n := strings.Count(logs.String(), `missing="list, watch pods"`); n != 1 {
		t.Errorf("the missing permission is logged %d times, want once", n)
	}
}
