package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/app"
	"github.com/medichq/medic/internal/fixtures"
)

// TestKubePodCrashLoopingAlertGetsClusterEvidence: the real webhook that
// Alertmanager v0.34.2 sent for KubePodCrashLooping (pod default/web-1)
// reaches medic, whose fake cluster holds that pod crash looping (the
// gitops-engine sample), its events and its previous instance's log. The
// built-in playbook's finding, in the file sink, carries the one-line
// diagnosis, the previous logs and the events; a node alert for a node the
// cluster does not know still gives a finding, with a note.
//
// TestPodTurningCrashLoopBackOffGetsLogsAndEvents is the same evidence on
// the Kubernetes-event path.
func TestKubePodCrashLoopingAlertGetsClusterEvidence(t *testing.T) {
	pod := crashLoopPod(t, "default", "web-1")
	backoff := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web-1.181a7d2c", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-1", FieldPath: "spec.containers{main}"},
		Type:           corev1.EventTypeWarning, Reason: "BackOff", Count: 17,
		Message:       "Back-off restarting failed container main in pod web-1_default(63674389-f613-11e8-a057-fe5f49266390)",
		Source:        corev1.EventSource{Component: "kubelet", Host: "minikube"},
		LastTimestamp: metav1.NewTime(time.Now().Add(-time.Minute)),
	}
	pulled := backoff.DeepCopy()
	pulled.Name, pulled.Type, pulled.Reason, pulled.Count = "web-1.181a7d11", corev1.EventTypeNormal, "Pulled", 4
	pulled.Message = `Successfully pulled image "alpine:latest" in 1.2s (1.2s including waiting)`
	kube := fake.NewClientset(pod, backoff, pulled)
	kube.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		return true, &runtime.Unknown{Raw: []byte("starting worker\nconfig: CART_DB_URL is not set\npanic: missing configuration\n")}, nil
	})
	dyn := dynamicfake.NewSimpleDynamicClient(scheme.Scheme)

	m := startMedic(t, testConfig(t, t.TempDir()), app.WithKubeClients(kube, dyn))
	for _, name := range []string{
		"captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json",
		"captured-alertmanager-v0.34.2__KubeNodeNotReady__firing.json",
	} {
		if status, answer := post(t, m.url+"/api/alerts", samplePayload(t, name), nil); status != http.StatusOK {
			t.Fatalf("%s: status %d %v", name, status, answer)
		}
	}
	// Both alerts' findings; the Kubernetes triggers watching the same fake
	// cluster add their own (the crash-looping pod), so count by alert.
	recs := waitFindings(t, m.findings, 30*time.Second, func(r []record) bool {
		seen := map[string]bool{}
		for _, x := range r {
			seen[x.Finding.Event.Labels["alertname"]] = true
		}
		return seen["KubePodCrashLooping"] && seen["KubeNodeNotReady"]
	})
	byAlert := map[string]event.Finding{}
	for _, r := range recs {
		byAlert[r.Finding.Event.Labels["alertname"]] = r.Finding
	}

	f := byAlert["KubePodCrashLooping"]
	if !strings.Contains(strings.Join(f.Playbooks, ","), "builtin-kube-pod-crash-looping") {
		t.Fatalf("the built-in crash-loop playbook did not run: %v", f.Playbooks)
	}
	got := map[string]event.Enrichment{}
	for _, e := range f.Enrichments {
		got[e.Source] = e
	}
	inv := got["pod_issue_investigator"]
	if len(inv.Blocks) == 0 || !strings.HasPrefix(inv.Blocks[0].Markdown,
		`Container main keeps crashing (Error, exit code 1; restarted 3 times); its last error: "panic: missing configuration"`) {
		t.Errorf("investigation: %+v", inv.Blocks)
	}
	logs := got["logs_enricher"]
	if len(logs.Blocks) != 1 || logs.Blocks[0].Log == nil ||
		logs.Blocks[0].Log.Source != "default/web-1 container main (previous)" ||
		!strings.Contains(logs.Blocks[0].Log.Text, "config: CART_DB_URL is not set") {
		t.Errorf("logs: %+v", logs.Blocks)
	}
	evs := got["pod_events_enricher"]
	if len(evs.Blocks) != 1 || evs.Blocks[0].Table == nil || len(evs.Blocks[0].Table.Rows) != 2 ||
		evs.Blocks[0].Table.Rows[0][1] != "BackOff" || evs.Blocks[0].Table.Rows[1][1] != "Pulled" {
		t.Errorf("events (warnings first): %+v", evs.Blocks)
	}
	var previous bool
	for _, a := range kube.Actions() {
		if g, ok := a.(k8stesting.GenericAction); ok && a.GetSubresource() == "log" {
			if o, ok := g.GetValue().(*corev1.PodLogOptions); ok && o.Previous && o.Container == "main" {
				previous = true
			}
		}
	}
	if !previous {
		t.Error("the logs were not read from the previous instance of container main")
	}

	n := byAlert["KubeNodeNotReady"]
	var note string
	for _, e := range n.Enrichments {
		if e.Source == "node_status_enricher" && len(e.Blocks) > 0 {
			note = e.Blocks[0].Markdown
		}
	}
	if note != "⚠ node n1 not found" {
		t.Errorf("node alert for an unknown node: note %q in %+v", note, n.Enrichments)
	}
}

// TestPodTurningCrashLoopBackOffGetsLogsAndEvents: a healthy pod in the
// fake cluster (client-go's fake clientset, real informers) turns
// CrashLoopBackOff; medic's own trigger notices, the built-in playbook runs,
// and the finding in the file sink carries the crashed instance's logs and
// the pod's events, exactly once.
func TestPodTurningCrashLoopBackOffGetsLogsAndEvents(t *testing.T) {
	crashing := crashLoopPod(t, "shop", "cart-7d9")
	healthy := crashing.DeepCopy()
	healthy.Status.ContainerStatuses = nil
	healthy.Status.Phase = corev1.PodRunning
	kube := fake.NewClientset(healthy)
	kube.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		return true, &runtime.Unknown{Raw: []byte("starting cart\npanic: CART_DB_URL is not set\n")}, nil
	})
	m := startMedic(t, testConfig(t, t.TempDir()), app.WithKubeClients(kube, dynamicfake.NewSimpleDynamicClient(scheme.Scheme)))

	ctx := context.Background()
	backoff := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "cart-7d9.1", Namespace: "shop"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "cart-7d9"},
		Type:           corev1.EventTypeWarning, Reason: "BackOff", Count: 5,
		Message:       "Back-off restarting failed container main in pod cart-7d9_shop",
		LastTimestamp: metav1.NewTime(time.Now()),
	}
	if _, err := kube.CoreV1().Events("shop").Create(ctx, backoff, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().Pods("shop").UpdateStatus(ctx, crashing, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	recs := waitFindings(t, m.findings, 30*time.Second, func(r []record) bool {
		for _, x := range r {
			if x.Finding.Event.Kind == event.KindPodCrashLoop {
				return true
			}
		}
		return false
	})
	var f event.Finding
	n := 0
	for _, r := range recs {
		if r.Finding.Event.Kind == event.KindPodCrashLoop {
			f, n = r.Finding, n+1
		}
	}
	if n != 1 {
		t.Errorf("%d crash-loop findings for one pod, want 1", n)
	}
	if f.Event.Subject.Namespace != "shop" || f.Event.Subject.Name != "cart-7d9" || f.Event.Source != "kubernetes" {
		t.Errorf("event: source %s subject %+v", f.Event.Source, f.Event.Subject)
	}
	got := map[string]event.Enrichment{}
	for _, e := range f.Enrichments {
		got[e.Source] = e
	}
	logs := got["logs_enricher"]
	if len(logs.Blocks) != 1 || logs.Blocks[0].Log == nil ||
		!strings.Contains(logs.Blocks[0].Log.Source, "(previous)") ||
		!strings.Contains(logs.Blocks[0].Log.Text, "panic: CART_DB_URL is not set") {
		t.Errorf("logs: %+v", logs.Blocks)
	}
	evs := got["pod_events_enricher"]
	if len(evs.Blocks) == 0 || evs.Blocks[0].Table == nil || len(evs.Blocks[0].Table.Rows) == 0 ||
		evs.Blocks[0].Table.Rows[0][1] != "BackOff" {
		t.Errorf("events: %+v", evs.Blocks)
	}
}

// crashLoopPod is the gitops-engine CrashLoopBackOff Pod sample, renamed.
func crashLoopPod(t *testing.T, namespace, name string) *corev1.Pod {
	t.Helper()
	b := fixtures.Read(t, "payloads", "k8s", "crashloopbackoff", "gitops-engine__pod-crashloop.yaml")
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(j, &pod); err != nil {
		t.Fatal(err)
	}
	pod.Namespace, pod.Name, pod.SelfLink = namespace, name, ""
	return &pod
}
