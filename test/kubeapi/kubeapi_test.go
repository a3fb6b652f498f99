package kubeapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/kube"
	"github.com/medichq/medic/internal/plugins"
	"github.com/medichq/medic/playbooks"
	kt "github.com/medichq/medic/sources/kubernetes"
	"github.com/medichq/medic/test/kubeapi"
	"github.com/medichq/medic/triggers"

	"github.com/medichq/medic/internal/testkit"
)

// collector is the detector's publisher: it stores events by ID like
// JetStream and hands them on to a real bus.
type collector struct {
	next   event.Publisher
	mu     sync.Mutex
	events []event.Event
	ids    map[string]bool
}

func (c *collector) Publish(ctx context.Context, evs []event.Event) (event.PublishResult, error) {
	res, err := c.next.Publish(ctx, evs)
	if err != nil {
		return res, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range evs {
		if !c.ids[ev.ID] {
			c.ids[ev.ID] = true
			c.events = append(c.events, ev)
		}
	}
	return res, nil
}

func (c *collector) of(kind event.Kind, name string) []event.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []event.Event
	for _, ev := range c.events {
		if ev.Kind == kind && (name == "" || ev.Subject.Name == name) {
			out = append(out, ev)
		}
	}
	return out
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// must returns v, or panics with err: the test fails with the stack (and
// the servers die with the test process).
func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("unexpected error: %v", err))
	}
	return v
}

func triggersOf(t *testing.T, yamlText string) []triggers.Trigger {
	t.Helper()
	set, err := playbooks.Build([]playbooks.File{{Path: "test.yaml", Data: []byte(yamlText)}}, playbooks.Options{Plugins: plugins.Builtin().Playbooks()})
	if err != nil {
		t.Fatal(err)
	}
	var out []triggers.Trigger
	for _, pb := range set.Playbooks {
		for _, tr := range pb.Triggers {
			out = append(out, tr.Trigger)
		}
	}
	return out
}

// medicDetector runs the detectors with medic's own credentials.
type medicDetector struct {
	det   *kt.Detector
	pub   *collector
	clock *clocktesting.FakeClock
	logs  *testkit.SyncBuffer
	kube  kubernetes.Interface
	dyn   dynamic.Interface

	mu      sync.Mutex
	handled map[string]bool // "namespace/name@resourceVersion" the detector looked at
}

// waitHandled waits until the detector looked at obj at its resource
// version and processed what that queued.
func (m *medicDetector) waitHandled(t *testing.T, obj metav1.Object) {
	t.Helper()
	key := obj.GetNamespace() + "/" + obj.GetName() + "@" + obj.GetResourceVersion()
	testkit.Eventually(t, 30*time.Second, "the detector to handle "+key, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.handled[key]
	})
	testkit.Eventually(t, 30*time.Second, "the detector to settle", m.det.Idle)
}

func startDetector(t *testing.T, c *kubeapi.Cluster, namespaces []string, book string) *medicDetector {
	t.Helper()
	cfg := kube.DefaultConfig()
	cfg.Namespaces = namespaces
	clients, err := kube.NewClients(c.Medic(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.Open(context.Background(), bus.Config{
		StoreDir: filepath.Join(t.TempDir(), "js"), Replicas: 1, DedupWindow: 10 * time.Minute, Retention: time.Hour,
		MaxBytes: 64 << 20, MaxDeliver: 3, AckWait: 5 * time.Second, PublishTimeout: 5 * time.Second, Compression: "s2",
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	state, err := kt.OpenKVState(context.Background(), b.JetStream(), 24*time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := &medicDetector{
		pub:     &collector{next: b, ids: map[string]bool{}},
		clock:   clocktesting.NewFakeClock(time.Now()),
		logs:    &testkit.SyncBuffer{},
		kube:    clients.Kube,
		dyn:     clients.Dynamic,
		handled: map[string]bool{},
	}
	m.det, err = kt.NewDetector(kt.Options{
		Kube: clients.Kube, Dynamic: clients.Dynamic, Namespaces: namespaces,
		Publisher: m.pub, State: state, Clock: m.clock,
		OnHandled: func(obj any) {
			if o, ok := obj.(metav1.Object); ok {
				m.mu.Lock()
				m.handled[o.GetNamespace()+"/"+o.GetName()+"@"+o.GetResourceVersion()] = true
				m.mu.Unlock()
			}
		},
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(m.logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	m.det.SetInterest(kt.InterestOf(triggersOf(t, book)))
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.det.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); m.det.Stop() })
	return m
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// admin is the cluster administrator's side: it builds the failure states.
type admin struct {
	t   *testing.T
	kc  kubernetes.Interface
	ctx context.Context
}

func (a *admin) namespace(name string) {
	a.t.Helper()
	_, err := a.kc.CoreV1().Namespaces().Create(a.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		a.t.Fatal(err)
	}
}

// workload creates a Deployment and its ReplicaSet (no controller manager
// runs, so nothing else would) and returns the ReplicaSet's owner reference.
func (a *admin) workload(ns, deploy, rs string) metav1.OwnerReference {
	a.t.Helper()
	labels := map[string]string{"app": deploy}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}
	d := must(a.kc.AppsV1().Deployments(ns).Create(a.ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: deploy, Namespace: ns},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}, metav1.CreateOptions{}))
	r := must(a.kc.AppsV1().ReplicaSets(ns).Create(a.ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: rs, Namespace: ns, Labels: labels, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}, metav1.CreateOptions{}))
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: r.Name, UID: r.UID, Controller: ptr.To(true)}
}

// pod creates sample's pod (metadata and containers) running, then writes
// the sample's status through the status subresource, as a kubelet would.
func (a *admin) pod(sample *corev1.Pod, owner *metav1.OwnerReference) *corev1.Pod {
	a.t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: sample.Name, Namespace: sample.Namespace, Labels: sample.Labels}}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	p.Spec.NodeName = sample.Spec.NodeName
	p.Spec.RestartPolicy = sample.Spec.RestartPolicy
	for _, c := range sample.Spec.Containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c.Name, Image: c.Image, Resources: c.Resources})
	}
	created := must(a.kc.CoreV1().Pods(p.Namespace).Create(a.ctx, p, metav1.CreateOptions{}))
	created.Status = *sample.Status.DeepCopy()
	return must(a.kc.CoreV1().Pods(p.Namespace).UpdateStatus(a.ctx, created, metav1.UpdateOptions{}))
}

const everything = `
- name: k8s
  triggers:
    - on_pod_crash_loop: {}
    - on_pod_oom_killed: {}
    - on_container_oom_killed: {}
    - on_image_pull_backoff: {fire_delay: 2m}
    - on_pod_evicted: {}
    - on_job_failure: {}
    - on_node_not_ready: {duration: 1m}
    - on_kubernetes_warning_event: {}
    - on_kubernetes_resource: {resource: v1/configmaps, operations: [create, update]}
  actions: [{create_finding: {}}]
`

// The detectors against a real kube-apiserver and etcd, with medic's
// credentials limited to the ClusterRole in deploy/rbac: pods driven into
// failure states through the status subresource, a failed job, a node
// going NotReady, warning events, a ConfigMap changing. Every detector
// must see what it needs with those credentials, and nothing more.
func TestDetectorsAgainstRealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and etcd (built once into the tools cache by test/tools/build-kube.sh)")
	}
	c, kc := kubeapi.StartReadOnly(t)
	ctx := context.Background()
	a := &admin{t: t, kc: kc, ctx: ctx}
	m := startDetector(t, c, nil, everything)

	// medic's credentials: everything the detectors need, no secrets, no writes.
	kinds := []event.Kind{event.KindPodCrashLoop, event.KindJobFailure, event.KindNodeNotReady, event.KindKubernetesWarningEvent}
	if missing, err := kube.Missing(ctx, m.kube, kt.Permissions(nil, kinds)); err != nil || len(missing) > 0 {
		t.Fatalf("deploy/rbac/clusterrole.yaml lacks %v (err %v)", missing, err)
	}
	if _, err := m.kube.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("medic listed secrets: %v", err)
	}
	if _, err := m.kube.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "x"}}}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("medic created a pod: %v", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := m.det.WaitForSync(sctx); err != nil {
		t.Fatalf("the detectors cannot watch with medic's RBAC: %v", err)
	}
	now := m.clock.Now()

	// A crash loop of a Deployment's pod (holmesgpt's describe).
	crashDesc := must(kubeapi.LoadDescribe("crashloopbackoff/holmesgpt__11_KubePodCrashLooping__kubectl_describe.txt"))
	a.namespace(crashDesc.Namespace)
	owner := a.workload(crashDesc.Namespace, "payment-processing-worker", "payment-processing-worker-747ccfb9db")
	crash := a.pod(crashDesc.Pod("", now), &owner)

	// An OOM kill (holmesgpt's describe: exit 137, limit 100Mi).
	oomDesc := must(kubeapi.LoadDescribe("oomkilled/holmesgpt__01_oom_kill__kubectl_describe.txt"))
	oom := a.pod(oomDesc.Pod("", now), nil)

	// A pod that cannot pull its image (gitops-engine's YAML) and the
	// scheduling failures of another (holmesgpt's describe) as events.
	pull := must(kubeapi.LoadPodYAML("imagepullbackoff/gitops-engine__pod-imagepullbackoff.yaml", now))
	pull = a.pod(pull, nil)
	schedDesc := must(kubeapi.LoadDescribe("failedscheduling/holmesgpt__12_KubePodNotReady__kubectl_describe.txt"))
	for _, e := range schedDesc.WarningEvents(now) {
		e.UID = ""
		must(a.kc.CoreV1().Events(e.Namespace).Create(ctx, e, metav1.CreateOptions{}))
	}

	// An evicted pod.
	a.namespace("argocd")
	evictedSample := must(kubeapi.LoadPodYAML("crashloopbackoff/gitops-engine__pod-crashloop.yaml", now))
	evictedSample.Status.Phase = corev1.PodFailed
	evictedSample.Status.Reason = "Evicted"
	evictedSample.Status.Message = "The node was low on resource: memory."
	for i := range evictedSample.Status.ContainerStatuses {
		cs := &evictedSample.Status.ContainerStatuses[i]
		cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 137, FinishedAt: metav1.NewTime(now)}}
		cs.LastTerminationState = corev1.ContainerState{}
	}
	evicted := a.pod(evictedSample, nil)

	// A Job that fails.
	a.namespace("ops")
	job := must(a.kc.BatchV1().Jobs("ops").Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "backup", Namespace: "ops"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "backup", Image: "busybox"}}}}},
	}, metav1.CreateOptions{}))
	job.Status.StartTime = ptr.To(metav1.NewTime(now.Add(-time.Minute)))
	job.Status.Failed = 7
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: metav1.NewTime(now)},
		{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: metav1.NewTime(now)},
	}
	must(a.kc.BatchV1().Jobs("ops").UpdateStatus(ctx, job, metav1.UpdateOptions{}))

	// A node that stops reporting.
	node := must(a.kc.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-1"}}, metav1.CreateOptions{}))
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown",
		Message: "Kubelet stopped posting node status.", LastTransitionTime: metav1.NewTime(now), LastHeartbeatTime: metav1.NewTime(now)}}
	must(a.kc.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}))

	// A ConfigMap created, then changed.
	cm := must(a.kc.CoreV1().ConfigMaps("ops").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"level": "info"}}, metav1.CreateOptions{}))

	testkit.Eventually(t, 30*time.Second, "the immediate events", func() bool {
		return len(m.pub.of(event.KindPodCrashLoop, crash.Name)) == 1 &&
			len(m.pub.of(event.KindPodOOMKilled, oom.Name)) == 1 &&
			len(m.pub.of(event.KindContainerOOMKilled, oom.Name)) == 1 &&
			len(m.pub.of(event.KindPodEvicted, evicted.Name)) == 1 &&
			len(m.pub.of(event.KindJobFailure, "backup")) == 1 &&
			len(m.pub.of(event.KindKubernetesWarningEvent, schedDesc.Name)) == 1 &&
			len(m.pub.of(event.KindKubernetesResource, "settings")) == 1
	})
	cm.Data["level"] = "debug"
	must(a.kc.CoreV1().ConfigMaps("ops").Update(ctx, cm, metav1.UpdateOptions{}))
	testkit.Eventually(t, 30*time.Second, "the ConfigMap update", func() bool { return len(m.pub.of(event.KindKubernetesResource, "settings")) == 2 })

	// The delays: past one minute the node fires; past two the image pull.
	testkit.Eventually(t, 30*time.Second, "the delays to start", func() bool { return m.det.Armed() == 2 })
	m.clock.Step(61 * time.Second)
	testkit.Eventually(t, 30*time.Second, "the node event", func() bool { return len(m.pub.of(event.KindNodeNotReady, "worker-1")) == 1 })
	if n := len(m.pub.of(event.KindImagePullBackoff, "")); n != 0 {
		t.Fatalf("image pull fired %d times before fire_delay", n)
	}
	m.clock.Step(61 * time.Second)
	testkit.Eventually(t, 30*time.Second, "the image pull event", func() bool { return len(m.pub.of(event.KindImagePullBackoff, pull.Name)) == 1 })

	ev := m.pub.of(event.KindPodCrashLoop, crash.Name)[0]
	if ev.Labels["owner_kind"] != "Deployment" || ev.Labels["owner_name"] != "payment-processing-worker" || ev.Labels["restart_count"] != "14" {
		t.Errorf("crash loop labels %v", ev.Labels)
	}
	if ev.Subject.Namespace != crash.Namespace || !strings.Contains(string(ev.Raw), string(crash.UID)) {
		t.Errorf("crash loop subject %+v, raw %.120s", ev.Subject, ev.Raw)
	}

	// Writing the same states again reports nothing new.
	before := m.pub.count()
	crash = must(a.kc.CoreV1().Pods(crash.Namespace).Get(ctx, crash.Name, metav1.GetOptions{}))
	crash.Status.Conditions = append(crash.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse})
	rewritten := must(a.kc.CoreV1().Pods(crash.Namespace).UpdateStatus(ctx, crash, metav1.UpdateOptions{}))
	m.waitHandled(t, rewritten)
	if after := m.pub.count(); after != before {
		t.Errorf("%d new events after rewriting a known state", after-before)
	}
}

// A resource outside the ClusterRole (a CRD's objects) is refused, and the
// detector says which permission is missing.
func TestMissingPermissionIsNamed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and etcd")
	}
	c, _ := kubeapi.StartReadOnly(t)
	ctx := context.Background()
	adminCfg := c.Admin()
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "widgets.example.com"},
		"spec": map[string]any{
			"group": "example.com",
			"scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
	dynAdmin := must(dynamic.NewForConfig(adminCfg))
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	must(dynAdmin.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}))
	widgets := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	testkit.Eventually(t, 30*time.Second, "the CRD to be served", func() bool {
		_, err := dynAdmin.Resource(widgets).Namespace("default").List(ctx, metav1.ListOptions{})
		return err == nil
	})

	m := startDetector(t, c, nil, `
- name: widgets
  triggers: [{on_kubernetes_resource: {resource: example.com/v1/widgets}}]
  actions: [{create_finding: {}}]
`)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := m.det.WaitForSync(wctx)
	if err == nil || !strings.Contains(err.Error(), "forbidden") || !strings.Contains(err.Error(), "widgets") {
		t.Fatalf("WaitForSync: %v, want a forbidden error naming widgets", err)
	}
	testkit.Eventually(t, 30*time.Second, "the log line", func() bool {
		return strings.Contains(m.logs.String(), `missing="list, watch widgets.example.com"`)
	})
}

// The namespaced variant (deploy/rbac/role.yaml bound in one namespace):
// medic watching that namespace sees its crash loops; the rest of the
// cluster stays closed to it.
func TestNamespacedRoleVariant(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and etcd")
	}
	c := kubeapi.Start(t)
	ctx := context.Background()
	a := &admin{t: t, kc: must(kubernetes.NewForConfig(c.Admin())), ctx: ctx}
	if err := kubeapi.Apply(ctx, a.kc, "", must(kubeapi.RBACFile("serviceaccount.yaml"))); err != nil {
		t.Fatal(err)
	}
	if err := kubeapi.Apply(ctx, a.kc, "shop", must(kubeapi.RBACFile("role.yaml"))); err != nil {
		t.Fatal(err)
	}
	a.namespace("elsewhere")
	m := startDetector(t, c, []string{"shop"}, `
- name: crash
  triggers: [{on_pod_crash_loop: {}}, {on_kubernetes_warning_event: {}}, {on_job_failure: {}}]
  actions: [{create_finding: {}}]
`)
	if missing, err := kube.Missing(ctx, m.kube, kt.Permissions([]string{"shop"},
		[]event.Kind{event.KindPodCrashLoop, event.KindKubernetesWarningEvent, event.KindJobFailure})); err != nil || len(missing) > 0 {
		t.Fatalf("deploy/rbac/role.yaml lacks %v (err %v)", missing, err)
	}
	for _, ns := range []string{"", "elsewhere"} {
		if _, err := m.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("medic listed pods in %q: %v", ns, err)
		}
	}
	if _, err := m.kube.CoreV1().Secrets("shop").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("medic listed secrets in its own namespace: %v", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := m.det.WaitForSync(sctx); err != nil {
		t.Fatalf("the detectors cannot watch namespace shop with the Role: %v", err)
	}
	sample := must(kubeapi.LoadPodYAML("crashloopbackoff/gitops-engine__pod-crashloop.yaml", m.clock.Now()))
	sample.Namespace = "shop"
	p := a.pod(sample, nil)
	other := sample.DeepCopy()
	other.Namespace = "elsewhere"
	a.pod(other, nil)
	testkit.Eventually(t, 30*time.Second, "the crash loop in shop", func() bool { return len(m.pub.of(event.KindPodCrashLoop, p.Name)) == 1 })
	m.waitHandled(t, p)
	if evs := m.pub.of(event.KindPodCrashLoop, ""); len(evs) != 1 || evs[0].Subject.Namespace != "shop" {
		t.Errorf("events %v, want one from shop", evs)
	}
}
