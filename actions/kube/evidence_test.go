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
		{"scheduling_gpu", goldenSchedulingGPU},
		{"scheduling_node_selector", goldenSchedulingSelector},
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
	params := ""
	if systemOOM {
		c.logs("allocating 64Mi\nallocating 128Mi\ntoken=s3cr3t\n")
		params = "attach_logs: true"
	}
	return runActions(t, c.env(), podEvent(event.KindPodOOMKilled, pod, "memory-eater"), [2]string{"pod_oom_killer_enricher", params})
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

// schedNode is a node with allocatable cpu, memory and pods.
func schedNode(name, cpu, mem string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
			"cpu": resource.MustParse(cpu), "memory": resource.MustParse(mem), "pods": resource.MustParse("110")}},
	}
}

// The holmesgpt KubeDeploymentReplicasMismatch: the second GPU pod of the
// deployment waits for a GPU the kind node does not have.
func goldenSchedulingGPU(t *testing.T) *event.Finding {
	dep, rs, pods := cartDeployment(t)
	_, evs := describePod(t, "failedscheduling/holmesgpt__12_KubePodNotReady__kubectl_describe.txt")
	node := schedNode("kind-control-plane", "8", "16Gi", map[string]string{"kubernetes.io/hostname": "kind-control-plane"})
	c := newCluster(t, append(append(objects(pods), objects(evs)...), dep, rs, node)...)
	ev := alertEvent("KubeDeploymentReplicasMismatch", map[string]string{"namespace": "default", "deployment": dep.Name, "severity": "warning"})
	ev.Title = "Deployment default/user-profile-resources has not matched the expected number of replicas for longer than 15 minutes."
	return runActions(t, c.env(), ev, [2]string{"report_scheduling_failure", ""})
}

// The holmesgpt pod selecting label=someLabel on its one-node kind cluster.
func goldenSchedulingSelector(t *testing.T) *event.Finding {
	pod, evs := describePod(t, "failedscheduling/holmesgpt__13a_pending_node_selector__kubectl_describe.txt")
	node := schedNode("kind-control-plane", "8", "16Gi", map[string]string{"kubernetes.io/hostname": "kind-control-plane"})
	c := newCluster(t, append(objects(evs), pod, node)...)
	ev := alertEvent("KubePodNotReady", map[string]string{"namespace": pod.Namespace, "pod": pod.Name, "severity": "warning"})
	ev.Title = "Pod app-13a/user-profile-import has been in a non-ready state for longer than 15 minutes."
	return runActions(t, c.env(), ev, [2]string{"report_scheduling_failure", ""})
}

// Every node check, one node each.
func TestNodeFit(t *testing.T) {
	t.Parallel()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "api-0", Namespace: "shop"},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"pool": "web"},
			Tolerations:  []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "web", Effect: corev1.TaintEffectNoSchedule}},
			Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
					{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"eu-1a", "eu-1b"}}}}}}}},
			Containers: []corev1.Container{{Name: "api", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				"cpu": resource.MustParse("1"), "memory": resource.MustParse("2Gi")}}}},
		},
	}
	web := func(zone string) map[string]string {
		return map[string]string{"pool": "web", "topology.kubernetes.io/zone": zone}
	}
	cordoned := schedNode("cordoned", "4", "8Gi", web("eu-1a"))
	cordoned.Spec.Unschedulable = true
	full := schedNode("full", "4", "8Gi", web("eu-1a"))
	tests := []struct {
		node *corev1.Node
		want string
	}{
		{schedNode("fits", "4", "8Gi", web("eu-1a"), corev1.Taint{Key: "dedicated", Value: "web", Effect: corev1.TaintEffectNoSchedule}), "fits now"},
		{schedNode("soft-taint", "4", "8Gi", web("eu-1b"), corev1.Taint{Key: "spot", Effect: corev1.TaintEffectPreferNoSchedule}), "fits now"},
		{cordoned, "cordoned"},
		{schedNode("tainted", "4", "8Gi", web("eu-1a"), corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}), "taint dedicated=db:NoSchedule not tolerated"},
		{schedNode("other-pool", "4", "8Gi", map[string]string{"pool": "batch", "topology.kubernetes.io/zone": "eu-1a"}), "lacks label pool=web"},
		{schedNode("other-zone", "4", "8Gi", web("eu-1c")), "does not match the required node affinity"},
		{full, "Insufficient memory (requests 2Gi, 1Gi left)"},
		{schedNode("small", "500m", "8Gi", web("eu-1a")), "Insufficient cpu (requests 1, 500m left)"},
	}
	nodes := make([]corev1.Node, 0, len(tests))
	for _, tt := range tests {
		nodes = append(nodes, *tt.node)
	}
	busy := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cache-0", Namespace: "shop"},
		Spec: corev1.PodSpec{NodeName: "full", Containers: []corev1.Container{{Name: "cache", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{"memory": resource.MustParse("7Gi")}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	done := busy
	done.Name, done.Status.Phase = "done-0", corev1.PodSucceeded // holds nothing
	b := nodeFitBlock(SchedulingInput{Pod: pod, Nodes: nodes, Pods: []corev1.Pod{busy, done}, MaxNodes: 20})
	if b.Table == nil {
		t.Fatalf("no table: %+v", b)
	}
	got := map[string]string{}
	for _, r := range b.Table.Rows {
		got[r[0]] = r[1]
	}
	for _, tt := range tests {
		if !strings.HasPrefix(got[tt.node.Name], tt.want) {
			t.Errorf("node %s: %q, want %q", tt.node.Name, got[tt.node.Name], tt.want)
		}
	}
	if first := b.Table.Rows[0][0]; first != "fits" && first != "soft-taint" {
		t.Errorf("nodes that fit are not listed first: %v", b.Table.Rows)
	}
}

func TestSchedulerReasons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		msg  string
		want string
	}{
		{"0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
			"1:Insufficient nvidia.com/gpu"},
		{"0/6 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient memory, 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/6 nodes are available: 1 Preemption is not helpful for scheduling, 5 No preemption victims found for incoming pod.",
			"1:node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }|2:Insufficient memory|3:node(s) didn't match Pod's node affinity/selector"},
		{"0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
			":pod has unbound immediate PersistentVolumeClaims"},
		{"0/3 nodes are available: 3 node(s) were unschedulable.", "3:node(s) were unschedulable"},
		{"no nodes available to schedule pods", ":no nodes available to schedule pods"},
	}
	for _, tt := range tests {
		var got []string
		for _, r := range SchedulerReasons(tt.msg) {
			got = append(got, r[0]+":"+r[1])
		}
		if g := strings.Join(got, "|"); g != tt.want {
			t.Errorf("SchedulerReasons(%q)\n got %s\nwant %s", tt.msg, g, tt.want)
		}
	}
}
