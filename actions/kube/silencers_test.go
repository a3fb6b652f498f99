package kube

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/test/kubeapi"
)

// silencerPodObj is a pod on node with phase and container states.
func silencerPodObj(name, node string, phase corev1.PodPhase, reason string, states ...corev1.ContainerState) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "shop/cart:1.4.2"}}},
		Status:     corev1.PodStatus{Phase: phase, Reason: reason},
	}
	for _, s := range states {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: "app", Image: "shop/cart:1.4.2", State: s})
	}
	return p
}

// oomPod was OOM killed at its 256Mi limit on node-steady.
func oomPod() *corev1.Pod {
	p := silencerPodObj("cart-oom", "node-steady", corev1.PodRunning, "", waiting("CrashLoopBackOff"))
	p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{"memory": resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{"memory": resource.MustParse("256Mi")},
	}
	killed := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	p.Status.ContainerStatuses[0].RestartCount = 3
	p.Status.ContainerStatuses[0].LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		Reason: "OOMKilled", ExitCode: 137, StartedAt: killed, FinishedAt: killed}}
	return p
}

// unscheduledPod selects nodes no node is.
func unscheduledPod() *corev1.Pod {
	p := silencerPodObj("gpu-job", "", corev1.PodPending, "")
	p.Spec.NodeSelector = map[string]string{"pool": "gpu"}
	return p
}

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}

// nodeReadySince is a node whose Ready condition last changed at since.
func nodeReadySince(name string, since time.Time) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(since.Add(-24 * time.Hour))},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(since.Add(-48 * time.Hour))},
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(since)},
		}},
	}
}

// silenced returns the finding's silence reason, or "".
func silenced(f *event.Finding) string {
	if f.Silenced == nil {
		return ""
	}
	if f.Silenced.By == "" {
		return "(no By)"
	}
	return f.Silenced.Reason
}

// checkSilence checks that f was silenced with a reason containing want
// ("" = not silenced), and that the silencer added a note containing
// wantNote, or nothing when wantNote is "".
func checkSilence(t *testing.T, f *event.Finding, silencer, want, wantNote string) {
	t.Helper()
	got := silenced(f)
	if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
		t.Errorf("silenced = %q, want %q", got, want)
	}
	if wantNote == "" {
		if len(f.Enrichments) != 0 {
			t.Errorf("unexpected enrichments: %+v", f.Enrichments)
		}
		return
	}
	if n := noteOf(t, enrichment(t, f, silencer)); !strings.Contains(n, wantNote) {
		t.Errorf("note = %q, want %q", n, wantNote)
	}
}

func TestPodStatusSilencer(t *testing.T) {
	t.Parallel()
	pending := silencerPodObj("cart-pending", "node-a", corev1.PodPending, "", waiting("ContainerCreating"))
	evicted := silencerPodObj("cart-evicted", "node-a", corev1.PodFailed, "Evicted")
	running := silencerPodObj("cart-running", "node-a", corev1.PodRunning, "", corev1.ContainerState{Running: &corev1.ContainerStateRunning{}})
	c := newCluster(t, pending, evicted, running)
	tests := []struct {
		name, params string
		ev           *event.Event
		want         string // part of the reason; "" = not silenced
		wantNote     string
	}{
		{"exclude ContainerCreating matches the container's waiting reason", "exclude: [ContainerCreating]",
			alertEvent("KubePodNotReady", map[string]string{"namespace": "shop", "pod": "cart-pending"}), "pod shop/cart-pending is ContainerCreating, in exclude", ""},
		{"exclude Evicted matches the pod's reason", "exclude: [Evicted, Unknown]",
			podEvent(event.KindPodCrashLoop, evicted, ""), "is Evicted, in exclude", ""},
		{"exclude matches case-insensitively", "exclude: [pending]",
			alertEvent("KubePodNotReady", map[string]string{"namespace": "shop", "pod": "cart-pending"}), "is Pending, in exclude", ""},
		{"exclude without a match delivers", "exclude: [Evicted]",
			alertEvent("KubePodNotReady", map[string]string{"namespace": "shop", "pod": "cart-running"}), "", ""},
		{"include Running keeps a running pod", "include: [Running]",
			alertEvent("KubePodNotReady", map[string]string{"namespace": "shop", "pod": "cart-running"}), "", ""},
		{"include Running silences a pending pod", "include: [Running]",
			alertEvent("KubePodNotReady", map[string]string{"namespace": "shop", "pod": "cart-pending"}), "is Pending, ContainerCreating, none of include (Running)", ""},
		{"an alert about a deployment is left alone", "include: [Running]",
			alertEvent("KubeDeploymentReplicasMismatch", map[string]string{"namespace": "shop", "deployment": "cart"}), "", ""},
		{"a pod that is gone is not silenced, and the note says why", "exclude: [Pending]",
			alertEvent("KubePodNotReady", map[string]string{"namespace": "shop", "pod": "cart-gone"}), "", "pod shop/cart-gone not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkSilence(t, runActions(t, c.env(), tt.ev, [2]string{"pod_status_silencer", tt.params}), "pod_status_silencer", tt.want, tt.wantNote)
		})
	}
}

// Without a cluster a silencer leaves a finding about anything but a pod
// alone, without a note (there is nothing to decide), and says why it could
// not decide on a pod.
func TestSilencersWithoutACluster(t *testing.T) {
	t.Parallel()
	deployment := alertEvent("KubeDeploymentReplicasMismatch", map[string]string{"namespace": "shop", "deployment": "cart"})
	pod := alertEvent("KubePodNotReady", map[string]string{"namespace": "shop", "pod": "cart-pending"})
	for silencer, params := range map[string]string{"pod_status_silencer": "exclude: [Pending]", "node_restart_silencer": ""} {
		t.Run(silencer, func(t *testing.T) {
			t.Parallel()
			checkSilence(t, runActions(t, &actions.Env{}, deployment, [2]string{silencer, params}), silencer, "", "")
			checkSilence(t, runActions(t, &actions.Env{}, pod, [2]string{silencer, params}), silencer, "", "no Kubernetes cluster configured")
		})
	}
}

func TestNodeRestartSilencer(t *testing.T) {
	t.Parallel()
	now := time.Now()
	c := newCluster(t,
		nodeReadySince("node-rebooted", now.Add(-2*time.Minute)),
		nodeReadySince("node-steady", now.Add(-3*time.Hour)),
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-new", CreationTimestamp: metav1.NewTime(now.Add(-time.Minute))}},
		silencerPodObj("cart-a", "node-rebooted", corev1.PodRunning, ""),
		silencerPodObj("cart-b", "node-steady", corev1.PodRunning, ""),
		silencerPodObj("cart-c", "node-new", corev1.PodRunning, ""),
		silencerPodObj("cart-d", "node-missing", corev1.PodRunning, ""),
		silencerPodObj("cart-e", "", corev1.PodPending, ""),
	)
	podAlert := func(pod string) *event.Event {
		return alertEvent("KubePodCrashLooping", map[string]string{"namespace": "shop", "pod": pod})
	}
	tests := []struct {
		name, params string
		ev           *event.Event
		want         string
		wantNote     string
	}{
		{"a pod on a node ready 2 minutes ago is silenced (default 300 s)", "", podAlert("cart-a"),
			"node node-rebooted of pod shop/cart-a became ready 2m", ""},
		{"a shorter period lets it through", "post_restart_silence: 60", podAlert("cart-a"), "", ""},
		{"a pod on a node ready for hours is delivered", "post_restart_silence: 600", podAlert("cart-b"), "", ""},
		{"a node without a Ready condition counts from its creation", "", podAlert("cart-c"), "node node-new of pod shop/cart-c", ""},
		{"a node that cannot be read: delivered, with a note", "", podAlert("cart-d"), "", "node node-missing not found"},
		{"an unscheduled pod has no node to have restarted", "", podAlert("cart-e"), "", ""},
		{"a node alert is not a pod alert", "", alertEvent("KubeNodeNotReady", map[string]string{"node": "node-rebooted"}), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkSilence(t, runActions(t, c.env(), tt.ev, [2]string{"node_restart_silencer", tt.params}), "node_restart_silencer", tt.want, tt.wantNote)
		})
	}
}

func TestSilencerParams(t *testing.T) {
	t.Parallel()
	tests := []struct{ action, params, wantErr string }{
		{"pod_status_silencer", "", "include and exclude are both empty"},
		{"pod_status_silencer", "exclude: [Evicted]", ""},
		{"pod_status_silencer", "statuses: [Evicted]", `unknown parameter "statuses"`},
		{"node_restart_silencer", "", ""},
		{"node_restart_silencer", "post_restart_silence: -1", "post_restart_silence is -1"},
	}
	for _, tt := range tests {
		_, err := buildErr(tt.action, tt.params)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s %q: error = %v, want %q", tt.action, tt.params, err, tt.wantErr)
		}
	}
}

// The Kubernetes silencers (and pod_oom_killer_enricher,
// report_scheduling_failure) against a real kube-apiserver, with the
// permissions of medic's service account from deploy/rbac: the node and pod
// reads they make are granted, and statuses written through the status
// subresource read back the way the actions expect.
func TestSilencersAgainstRealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and etcd")
	}
	t.Parallel()
	c, admin := kubeapi.StartReadOnly(t, "shop")
	ctx := context.Background()
	now := time.Now()
	for _, n := range []*corev1.Node{nodeReadySince("node-rebooted", now.Add(-90*time.Second)), nodeReadySince("node-steady", now.Add(-2*time.Hour))} {
		created, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Status = n.Status
		if _, err := admin.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*corev1.Pod{
		silencerPodObj("cart-new", "node-rebooted", corev1.PodPending, "", waiting("ContainerCreating")),
		silencerPodObj("cart-old", "node-steady", corev1.PodRunning, "", waiting("CrashLoopBackOff")),
		oomPod(),
		unscheduledPod(),
	} {
		status := p.Status
		created, err := admin.CoreV1().Pods("shop").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Status = status
		if _, err := admin.CoreV1().Pods("shop").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	medic, err := kubernetes.NewForConfig(c.Medic())
	if err != nil {
		t.Fatal(err)
	}
	env := &actions.Env{Kube: medic, ClusterName: "test"}
	podAlert := func(pod string) *event.Event {
		return alertEvent("KubePodCrashLooping", map[string]string{"namespace": "shop", "pod": pod})
	}
	tests := []struct {
		name   string
		ev     *event.Event
		action [2]string
		want   string
	}{
		{"node restarted 90 s ago", podAlert("cart-new"), [2]string{"node_restart_silencer", "post_restart_silence: 600"}, "node node-rebooted of pod shop/cart-new became ready 1m"},
		{"node up for 2 h", podAlert("cart-old"), [2]string{"node_restart_silencer", "post_restart_silence: 600"}, ""},
		{"ContainerCreating excluded", podAlert("cart-new"), [2]string{"pod_status_silencer", "exclude: [ContainerCreating, Evicted]"}, "is ContainerCreating, in exclude"},
		{"CrashLoopBackOff not excluded", podAlert("cart-old"), [2]string{"pod_status_silencer", "exclude: [ContainerCreating, Evicted]"}, ""},
	}
	// pod_oom_killer_enricher reads the node and its pods with the same
	// permissions.
	f := runActions(t, env, podAlert("cart-oom"), [2]string{"pod_oom_killer_enricher", ""})
	if got := text(enrichment(t, f, "pod_oom_killer_enricher")); !strings.Contains(got, "reached its own memory limit of 256Mi (it requests 128Mi") ||
		!strings.Contains(got, "requested by its pods | 128Mi by 2 pods") || !strings.Contains(got, "system OOMs (kubelet) | none within 10m") || strings.Contains(got, "⚠") {
		t.Errorf("pod_oom_killer_enricher against the API server:\n%s", got)
	}
	// report_scheduling_failure lists the nodes and the pods on them.
	f = runActions(t, env, podAlert("gpu-job"), [2]string{"report_scheduling_failure", ""})
	if got := text(enrichment(t, f, "report_scheduling_failure")); !strings.Contains(got, "node-rebooted | lacks label pool=gpu") ||
		!strings.Contains(got, "node-steady | lacks label pool=gpu") || strings.Contains(got, "⚠") {
		t.Errorf("report_scheduling_failure against the API server:\n%s", got)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkSilence(t, runActions(t, env, tt.ev, tt.action), tt.action[0], tt.want, "")
		})
	}
}
