package kube

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks/stdout"
)

// The golden files show what an on-call engineer reads: each finding is
// built by running the actions a built-in playbook runs against a fake
// cluster holding the real samples, then rendered by the stdout sink.
func TestGoldenEnrichments(t *testing.T) {
	tests := []struct {
		name    string
		finding func(t *testing.T) *event.Finding
	}{
		{"crashloop_alert", goldenCrashLoop},
		{"oomkilled_event", goldenOOM},
		{"image_pull_backoff", goldenImagePull},
		{"unschedulable_replicas_mismatch", goldenReplicasMismatch},
		{"job_failed", goldenJob},
		{"node_not_ready", goldenNode},
		{"statefulset_daemonset", goldenStatefulSetDaemonSet},
		{"resource_yaml", goldenYAML},
		{"missing_evidence_notes", goldenNotes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.finding(t)
			var buf bytes.Buffer
			if err := stdout.Render(&buf, f, false); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.name, buf.Bytes())
		})
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	testkit.Golden(t, filepath.Join("testdata", name+".golden"), got)
}

func objects[T any, PT interface {
	*T
	runtime.Object
}](items []T) []runtime.Object {
	out := make([]runtime.Object, len(items))
	for i := range items {
		out[i] = PT(&items[i])
	}
	return out
}

// KubePodCrashLooping for the holmesgpt payment worker whose log says
// DEPLOY_ENV is undefined.
func goldenCrashLoop(t *testing.T) *event.Finding {
	pod, evs := describePod(t, "crashloopbackoff/holmesgpt__11_KubePodCrashLooping__kubectl_describe.txt")
	c := newCluster(t, append(objects(evs), pod)...)
	c.logs("Environment variable DEPLOY_ENV is undefined\n")
	ev := alertEvent("KubePodCrashLooping", map[string]string{
		"namespace": pod.Namespace, "pod": pod.Name, "container": "payment-processing-container", "severity": "warning",
	})
	ev.Title = "Pod default/payment-processing-worker-747ccfb9db-pd6wz (payment-processing-container) is in waiting state (reason: \"CrashLoopBackOff\")."
	return runActions(t, c.env(), ev,
		[2]string{"pod_issue_investigator", ""}, [2]string{"logs_enricher", "previous: true"}, [2]string{"pod_events_enricher", ""})
}

func goldenOOM(t *testing.T) *event.Finding {
	pod, evs := describePod(t, "oomkilled/holmesgpt__01_oom_kill__kubectl_describe.txt")
	c := newCluster(t, append(objects(evs), pod)...)
	return runActions(t, c.env(), podEvent(event.KindPodOOMKilled, pod, "memory-eater"),
		[2]string{"pod_issue_investigator", "logs: false"}, [2]string{"pod_status_enricher", ""}, [2]string{"pod_events_enricher", ""})
}

func goldenImagePull(t *testing.T) *event.Finding {
	pod, evs := describePod(t, "imagepullbackoff/holmesgpt__54__kubectl_describe_fast-fail-pod.txt")
	c := newCluster(t, append(objects(evs), pod)...)
	return runActions(t, c.env(), podEvent(event.KindImagePullBackoff, pod, "fail-container"),
		[2]string{"pod_issue_investigator", ""}, [2]string{"pod_events_enricher", ""})
}

// cartDeployment is the holmesgpt KubeDeploymentReplicasMismatch case: a
// deployment of two GPU pods, one running and one (the sample) pending.
func cartDeployment(t *testing.T) (*appsv1.Deployment, *appsv1.ReplicaSet, []corev1.Pod) {
	pending, _ := describePod(t, "failedscheduling/holmesgpt__12_KubePodNotReady__kubectl_describe.txt")
	yes := true
	two := int32(2)
	labels := map[string]string{"app": "user-profile-resources"}
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{Kind: "Deployment", APIVersion: "apps/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: "user-profile-resources", Namespace: "default", UID: "dep-uid", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: &two,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge: ptr(intstr.FromString("25%")), MaxUnavailable: ptr(intstr.FromString("25%"))}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: pending.Spec.Containers},
			},
		},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1, UnavailableReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable",
					Message: "Deployment does not have minimum availability.", LastTransitionTime: metav1.NewTime(sampleBase.Add(-5 * time.Hour))},
				{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
					Message: `ReplicaSet "user-profile-resources-659d4dd659" has timed out progressing.`, LastTransitionTime: metav1.NewTime(sampleBase.Add(-5 * time.Hour))},
			},
		},
	}
	rs := &appsv1.ReplicaSet{
		TypeMeta: metav1.TypeMeta{Kind: "ReplicaSet", APIVersion: "apps/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: "user-profile-resources-659d4dd659", Namespace: "default",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: dep.Name, UID: dep.UID, Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}},
	}
	running := pending.DeepCopy()
	running.Name = "user-profile-resources-659d4dd659-7xk2p"
	running.Spec.NodeName = "kind-control-plane"
	running.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, QOSClass: corev1.PodQOSGuaranteed, StartTime: ptr(metav1.NewTime(sampleBase.Add(-6 * time.Hour))),
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "profile-getter", Image: "nginx", Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(sampleBase.Add(-6 * time.Hour))}}}},
	}
	return dep, rs, []corev1.Pod{*pending, *running}
}

func ptr[T any](v T) *T { return &v }

func goldenReplicasMismatch(t *testing.T) *event.Finding {
	dep, rs, pods := cartDeployment(t)
	_, evs := describePod(t, "failedscheduling/holmesgpt__12_KubePodNotReady__kubectl_describe.txt")
	c := newCluster(t, append(append(objects(pods), objects(evs)...), dep, rs)...)
	ev := alertEvent("KubeDeploymentReplicasMismatch", map[string]string{"namespace": "default", "deployment": dep.Name, "severity": "warning"})
	ev.Title = "Deployment default/user-profile-resources has not matched the expected number of replicas for longer than 15 minutes."
	return runActions(t, c.env(), ev,
		[2]string{"deployment_status_enricher", ""}, [2]string{"related_pods", ""}, [2]string{"pod_issue_investigator", ""})
}

// A CronJob's run whose pods failed until the backoff limit.
func goldenJob(t *testing.T) *event.Finding {
	yes := true
	backoff, one := int32(2), int32(1)
	uid := types.UID("5b1c3d2e-7a1f-4c55-9a0e-2f1d6b7c8e90")
	sel := map[string]string{"batch.kubernetes.io/controller-uid": string(uid)}
	start := sampleBase.Add(-10 * time.Minute)
	job := &batchv1.Job{
		TypeMeta: metav1.TypeMeta{Kind: "Job", APIVersion: "batch/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: "db-backup-28734120", Namespace: "batch", UID: uid,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: "db-backup", Controller: &yes}}},
		Spec: batchv1.JobSpec{
			BackoffLimit: &backoff, Completions: &one, Parallelism: &one,
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "backup", Image: "postgres:16"}}}},
		},
		Status: batchv1.JobStatus{
			StartTime: ptr(metav1.NewTime(start)), Failed: 3,
			Conditions: []batchv1.JobCondition{
				{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: metav1.NewTime(start.Add(4 * time.Minute))},
				{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: metav1.NewTime(start.Add(4 * time.Minute))},
			},
		},
	}
	var pods []corev1.Pod
	for i, suffix := range []string{"hk2lp", "q8w7z", "zt5mc"} {
		at := start.Add(time.Duration(i) * 80 * time.Second)
		pods = append(pods, corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-" + suffix, Namespace: "batch",
				Labels:          map[string]string{"batch.kubernetes.io/controller-uid": string(uid), "job-name": job.Name},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: uid, Controller: &yes}}},
			Spec: corev1.PodSpec{NodeName: "worker-2", RestartPolicy: corev1.RestartPolicyNever, Containers: job.Spec.Template.Spec.Containers},
			Status: corev1.PodStatus{Phase: corev1.PodFailed, StartTime: ptr(metav1.NewTime(at)),
				ContainerStatuses: []corev1.ContainerStatus{{Name: "backup", Image: "postgres:16", State: corev1.ContainerState{
					Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1, StartedAt: metav1.NewTime(at.Add(2 * time.Second)), FinishedAt: metav1.NewTime(at.Add(3 * time.Second))}}}}},
		})
	}
	c := newCluster(t, append(objects(pods), job)...)
	c.logs("pg_dump: error: connection to server at \"db.batch.svc\" (10.96.0.15), port 5432 failed: FATAL:  password authentication failed for user \"backup\"\n")
	ev := alertEvent("KubeJobFailed", map[string]string{"namespace": "batch", "job_name": job.Name, "severity": "warning"})
	ev.Title = "Job batch/db-backup-28734120 failed to complete."
	return runActions(t, c.env(), ev, [2]string{"job_info_enricher", ""}, [2]string{"logs_enricher", ""})
}

// notReadyNode is a node whose kubelet stopped posting status, as the node
// lifecycle controller marks it, with the pods still bound to it.
func notReadyNode() (*corev1.Node, []corev1.Pod) {
	lost := metav1.NewTime(sampleBase.Add(-7 * time.Minute))
	unknown := func(typ corev1.NodeConditionType) corev1.NodeCondition {
		return corev1.NodeCondition{Type: typ, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown",
			Message: "Kubelet stopped posting node status.", LastTransitionTime: lost}
	}
	node := &corev1.Node{
		TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-3-17.eu-west-1.compute.internal", CreationTimestamp: metav1.NewTime(sampleBase.Add(-40 * 24 * time.Hour)),
			Labels: map[string]string{"node-role.kubernetes.io/worker": "", "node.kubernetes.io/instance-type": "m5.large", "topology.kubernetes.io/zone": "eu-west-1b"}},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{
			{Key: "node.kubernetes.io/unreachable", Effect: corev1.TaintEffectNoSchedule},
			{Key: "node.kubernetes.io/unreachable", Effect: corev1.TaintEffectNoExecute},
		}},
		Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{"cpu": resource.MustParse("2"), "memory": resource.MustParse("7935436Ki"), "pods": resource.MustParse("29"), "ephemeral-storage": resource.MustParse("83873772Ki")},
			Allocatable: corev1.ResourceList{"cpu": resource.MustParse("1930m"), "memory": resource.MustParse("7246284Ki"), "pods": resource.MustParse("29"), "ephemeral-storage": resource.MustParse("76224326324")},
			Conditions: []corev1.NodeCondition{
				unknown(corev1.NodeMemoryPressure), unknown(corev1.NodeDiskPressure), unknown(corev1.NodePIDPressure), unknown(corev1.NodeReady),
			},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.3.17"}, {Type: corev1.NodeHostName, Address: "ip-10-0-3-17.eu-west-1.compute.internal"}},
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.31.4-eks-aeac579", OSImage: "Amazon Linux 2023.6.20250107", Architecture: "amd64",
				KernelVersion: "6.1.119-129.201.amzn2023.x86_64", ContainerRuntimeVersion: "containerd://1.7.25"},
		},
	}
	pod := func(ns, name string, cpu, mem string, ready bool) corev1.Pod {
		return corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{{Name: "main", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{"cpu": resource.MustParse(cpu), "memory": resource.MustParse(mem)}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "main", Ready: ready, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
		}
	}
	return node, []corev1.Pod{
		pod("shop", "cart-7d9f8-x2x4k", "500m", "1Gi", false),
		pod("kube-system", "kube-proxy-9kq2d", "100m", "0", false),
		pod("monitoring", "node-exporter-b7x4w", "100m", "180Mi", false),
		pod("shop", "checkout-6b5c9-kw8pq", "250m", "512Mi", false),
	}
}

func goldenNode(t *testing.T) *event.Finding {
	node, pods := notReadyNode()
	nodeEvent := corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: node.Name + ".17f3a", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: node.Name},
		Type:           "Normal", Reason: "NodeNotReady", Message: "Node " + node.Name + " status is now: NodeNotReady",
		Source: corev1.EventSource{Component: "node-controller"}, Count: 1, LastTimestamp: metav1.NewTime(sampleBase.Add(-7 * time.Minute)),
	}
	c := newCluster(t, append(objects(pods), node, &nodeEvent)...)
	ev := alertEvent("KubeNodeNotReady", map[string]string{"node": node.Name, "severity": "warning"})
	ev.Title = node.Name + " has been unready for more than 15 minutes."
	return runActions(t, c.env(), ev, [2]string{"node_status_enricher", ""}, [2]string{"resource_events_enricher", ""})
}

func goldenStatefulSetDaemonSet(t *testing.T) *event.Finding {
	three := int32(3)
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "postgres", Namespace: "db", Generation: 4},
		Spec: appsv1.StatefulSetSpec{Replicas: &three, ServiceName: "postgres-headless",
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			PodManagementPolicy: appsv1.OrderedReadyPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: map[string]string{"app": "postgres"}},
			Template:            corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "postgres", Image: "postgres:16.4"}}}}},
		Status: appsv1.StatefulSetStatus{ObservedGeneration: 4, Replicas: 3, ReadyReplicas: 2, CurrentReplicas: 2, UpdatedReplicas: 1, AvailableReplicas: 2,
			CurrentRevision: "postgres-6c7d8b9f4", UpdateRevision: "postgres-7f9b45d6c"},
	}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "cilium", Namespace: "kube-system", Generation: 2},
		Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType},
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "cilium"}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
				Containers: []corev1.Container{{Name: "cilium-agent", Image: "quay.io/cilium/cilium:v1.16.5"}}}}},
		Status: appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2,
			UpdatedNumberScheduled: 3, NumberAvailable: 2, NumberUnavailable: 1},
	}
	var pods []corev1.Pod
	for i, node := range []string{"worker-1", "worker-2", "worker-3"} {
		p := corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: []string{"cilium-4xq9v", "cilium-8hm2k", "cilium-tz7wp"}[i], Namespace: "kube-system",
				Labels: map[string]string{"k8s-app": "cilium"}},
			Spec: corev1.PodSpec{NodeName: node, Containers: ds.Spec.Template.Spec.Containers},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: ptr(metav1.NewTime(sampleBase.Add(-3 * time.Hour))),
				ContainerStatuses: []corev1.ContainerStatus{{Name: "cilium-agent", Ready: true,
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(sampleBase.Add(-3 * time.Hour))}}}}},
		}
		if node == "worker-3" {
			p.Status.ContainerStatuses[0] = corev1.ContainerStatus{Name: "cilium-agent", RestartCount: 5,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1,
					FinishedAt: metav1.NewTime(sampleBase.Add(-2 * time.Minute))}}}
		}
		pods = append(pods, p)
	}
	c := newCluster(t, append(objects(pods), sts, ds)...)
	f := runActions(t, c.env(), alertEvent("KubeStatefulSetReplicasMismatch", map[string]string{"namespace": "db", "statefulset": "postgres"}),
		[2]string{"statefulset_status_enricher", ""})
	g := runActions(t, c.env(), alertEvent("KubeDaemonSetRolloutStuck", map[string]string{"namespace": "kube-system", "daemonset": "cilium"}),
		[2]string{"daemonset_status_enricher", ""}, [2]string{"related_pods", ""})
	f.Enrichments = append(f.Enrichments, g.Enrichments...)
	return f
}

func goldenYAML(t *testing.T) *event.Finding {
	pod := samplePod(t, "imagepullbackoff/gitops-engine__pod-imagepullbackoff.yaml")
	pod.TypeMeta = metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}
	c := newCluster(t, pod)
	return runActions(t, c.env(), podEvent(event.KindImagePullBackoff, pod, ""), [2]string{"resource_yaml", "max_lines: 40"})
}

// What a finding looks like when the cluster does not answer: each action
// says why its evidence is missing.
func goldenNotes(t *testing.T) *event.Finding {
	pod := samplePod(t, "crashloopbackoff/gitops-engine__pod-crashloop.yaml")
	c := newCluster(t, pod)
	c.deny("get", "pods", "log")
	c.deny("list", "events", "")
	ev := podEvent(event.KindPodCrashLoop, pod, "main")
	f := runActions(t, c.env(), ev,
		[2]string{"logs_enricher", "previous: true"}, [2]string{"pod_events_enricher", ""}, [2]string{"pod_issue_investigator", ""},
		[2]string{"deployment_status_enricher", ""})
	gone := alertEvent("KubePodCrashLooping", map[string]string{"namespace": "shop", "pod": "cart-7d9f8-x2x4k"})
	g := runActions(t, c.env(), gone, [2]string{"pod_status_enricher", ""})
	h := runActions(t, &actions.Env{}, ev, [2]string{"node_status_enricher", ""})
	f.Enrichments = append(append(f.Enrichments, g.Enrichments...), h.Enrichments...)
	return f
}
