package kube

import (
	"context"
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/event"
)

// labelKinds maps the labels kube-state-metrics and the kubernetes-mixin put
// on alerts to the kind of object they name, most specific first. "job" is
// Prometheus' scrape job, not a Kubernetes Job, so only job_name counts.
var labelKinds = []struct{ label, kind string }{
	{"pod", "Pod"},
	{"pod_name", "Pod"},
	{"deployment", "Deployment"},
	{"statefulset", "StatefulSet"},
	{"daemonset", "DaemonSet"},
	{"job_name", "Job"},
	{"node", "Node"},
}

// SubjectOf returns the object an event is about. A Kubernetes trigger sets
// ev.Subject itself; for an alert the fields it lacks are taken from the
// labels, so a hand-written event with only labels works too.
func SubjectOf(ev *event.Event) event.Subject {
	s := ev.Subject
	l := ev.Labels
	if ev.Kind == event.KindPrometheusAlert && s.Kind != "" {
		// The webhook worked the subject out from these labels already, with
		// the rules for an exporter's own labels (kube-state-metrics' pod,
		// container and namespace); filling it again from the raw labels
		// would bring the exporter's back.
		if s.Kind == "Node" && s.Node == "" {
			s.Node = s.Name
		}
		return s
	}
	if s.Namespace == "" {
		s.Namespace = l["namespace"]
	}
	if s.Container == "" {
		s.Container = firstNonEmpty(l["container"], l["container_name"])
	}
	if s.Node == "" {
		s.Node = l["node"]
	}
	if s.Kind == "" {
		for _, lk := range labelKinds {
			if v := l[lk.label]; v != "" {
				s.Kind, s.Name = lk.kind, v
				break
			}
		}
	}
	if s.Kind == "Node" && s.Node == "" {
		s.Node = s.Name
	}
	return s
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// instanceHost strips the port from a scrape target ("10.0.0.5:9100").
func instanceHost(instance string) string {
	if h, _, err := net.SplitHostPort(instance); err == nil {
		return h
	}
	return instance
}

// rawPod returns the pod a Kubernetes trigger recorded in the event, if the
// event carries one for this name. It shows the pod as it was when the
// event happened, which is what is left when the pod is gone.
func rawPod(ev *event.Event, namespace, name string) *corev1.Pod {
	if ev.Kind == event.KindPrometheusAlert || len(ev.Raw) == 0 {
		return nil
	}
	var p corev1.Pod
	if err := json.Unmarshal(ev.Raw, &p); err != nil {
		return nil
	}
	if p.Name != name || (p.Namespace != "" && p.Namespace != namespace) || (p.Kind != "" && p.Kind != "Pod") {
		return nil
	}
	if len(p.Spec.Containers) == 0 && len(p.Status.ContainerStatuses) == 0 {
		return nil
	}
	return &p
}

// resolvedPod is the pod an action looks at and how it was chosen.
type resolvedPod struct {
	Pod *corev1.Pod
	// How says why this pod, when it is not the subject itself ("the least
	// healthy of deployment shop/cart's 3 pods").
	How string
	// Snapshot is set when the pod came from the event, not the cluster.
	Snapshot string
}

// resolvePod finds the pod the event is about: the subject when it is a
// pod, else the least healthy pod of the subject's workload (Deployment,
// StatefulSet, DaemonSet, Job, ReplicaSet). A pod that is gone (or that
// medic may not read) falls back to the copy a Kubernetes trigger put in the
// event, with a note saying so.
func resolvePod(ctx context.Context, kc kubernetes.Interface, ev *event.Event) (*resolvedPod, error) {
	s := SubjectOf(ev)
	if s.Kind == "Pod" {
		if s.Name == "" || s.Namespace == "" {
			return nil, problemf("the event names no pod with its namespace (labels pod and namespace)")
		}
		c := call{verb: "get", resource: "pods", namespace: s.Namespace, name: s.Name}
		pod, err := kc.CoreV1().Pods(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil {
			explained := c.explain(err)
			if raw := rawPod(ev, s.Namespace, s.Name); raw != nil {
				if raw.Namespace == "" {
					raw.Namespace = s.Namespace
				}
				return &resolvedPod{Pod: raw, Snapshot: explained.Error() + "; showing the pod as recorded in the event"}, nil
			}
			return nil, explained
		}
		return &resolvedPod{Pod: pod}, nil
	}
	if _, ok := workloadKindOf(s.Kind); ok {
		pods, err := workloadPods(ctx, kc, s.Kind, s.Namespace, s.Name)
		if err != nil {
			return nil, err
		}
		if len(pods) == 0 {
			return nil, problemf("%s %s has no pods", strings.ToLower(s.Kind), ref(s.Namespace, s.Name))
		}
		sortPodsWorstFirst(pods)
		how := ""
		if len(pods) > 1 {
			how = "the least healthy of " + strings.ToLower(s.Kind) + " " + ref(s.Namespace, s.Name) + "'s " + itoa(len(pods)) + " pods"
		}
		return &resolvedPod{Pod: &pods[0], How: how}, nil
	}
	if s.Kind == "" {
		return nil, problemf("the event names no pod (labels pod and namespace)")
	}
	return nil, problemf("the event is about %s %s, not a pod", strings.ToLower(s.Kind), ref(s.Namespace, s.Name))
}

// workloadPods lists the pods selected by a workload's selector.
func workloadPods(ctx context.Context, kc kubernetes.Interface, kind, namespace, name string) ([]corev1.Pod, error) {
	if namespace == "" || name == "" {
		return nil, problemf("the event names no %s with its namespace", strings.ToLower(kind))
	}
	k, ok := workloadKindOf(kind)
	if !ok {
		return nil, problemf("cannot find the pods of a %s", kind)
	}
	w, err := k.get(ctx, kc, namespace, name)
	if err != nil {
		return nil, err
	}
	return selectPods(ctx, kc, namespace, w.pods)
}

// selectPods lists the pods in namespace matching sel. The selector is
// applied again on the answer, so a client that ignores it (a fake) gives
// the same result as the API server.
func selectPods(ctx context.Context, kc kubernetes.Interface, namespace string, sel *metav1.LabelSelector) ([]corev1.Pod, error) {
	if sel == nil {
		return nil, problemf("the workload has no pod selector")
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, problemf("invalid pod selector: %v", err)
	}
	if s.Empty() {
		return nil, problemf("the workload's pod selector is empty")
	}
	list, err := kc.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: s.String()})
	if err != nil {
		return nil, call{verb: "list", resource: "pods", namespace: namespace}.explain(err)
	}
	pods := slices.DeleteFunc(list.Items, func(p corev1.Pod) bool { return !s.Matches(labels.Set(p.Labels)) })
	return pods, nil
}

// ownerWorkload walks a pod's controller references up to the workload that
// a person manages: ReplicaSet → Deployment, Job → CronJob. When the
// ReplicaSet cannot be read, the Deployment's name is derived from the
// ReplicaSet's (name minus the pod-template-hash).
func ownerWorkload(ctx context.Context, kc kubernetes.Interface, pod *corev1.Pod) (kind, name string) {
	owner := metav1.GetControllerOf(pod)
	if owner == nil {
		return "", ""
	}
	if owner.Kind != "ReplicaSet" {
		return owner.Kind, owner.Name
	}
	rs, err := kc.AppsV1().ReplicaSets(pod.Namespace).Get(ctx, owner.Name, metav1.GetOptions{})
	if err == nil {
		if o := metav1.GetControllerOf(rs); o != nil {
			return o.Kind, o.Name
		}
		return "ReplicaSet", owner.Name
	}
	if h := pod.Labels["pod-template-hash"]; h != "" && strings.HasSuffix(owner.Name, "-"+h) {
		return "Deployment", strings.TrimSuffix(owner.Name, "-"+h)
	}
	return "ReplicaSet", owner.Name
}

// workloadRef finds the object of kind the event is about: the subject
// itself, the label naming it, or the controller of the subject pod.
func workloadRef(ctx context.Context, kc kubernetes.Interface, ev *event.Event, kind string) (namespace, name string, err error) {
	s := SubjectOf(ev)
	if s.Kind == kind {
		if s.Name == "" || s.Namespace == "" {
			return "", "", problemf("the event names no %s with its namespace", strings.ToLower(kind))
		}
		return s.Namespace, s.Name, nil
	}
	k, _ := workloadKindOf(kind)
	label := k.label
	if v := ev.Labels[label]; label != "" && v != "" && s.Namespace != "" {
		return s.Namespace, v, nil
	}
	if s.Kind == "Pod" && s.Name != "" && s.Namespace != "" {
		pod, err := kc.CoreV1().Pods(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil {
			pod = rawPod(ev, s.Namespace, s.Name)
			if pod == nil {
				return "", "", call{verb: "get", resource: "pods", namespace: s.Namespace, name: s.Name}.explain(err)
			}
			pod.Namespace = s.Namespace
		}
		k, n := ownerWorkload(ctx, kc, pod)
		if k == kind {
			return s.Namespace, n, nil
		}
		if k == "" {
			return "", "", problemf("pod %s has no controller, so no %s", ref(s.Namespace, s.Name), strings.ToLower(kind))
		}
		return "", "", problemf("pod %s belongs to %s %s, not to a %s", ref(s.Namespace, s.Name), strings.ToLower(k), n, strings.ToLower(kind))
	}
	if s.IsZero() {
		return "", "", problemf("the event names no %s (label %s)", strings.ToLower(kind), label)
	}
	return "", "", problemf("the event is about %s, not a %s", describeSubject(s), strings.ToLower(kind))
}

func describeSubject(s event.Subject) string {
	if s.Kind == "" {
		return ref(s.Namespace, s.Name)
	}
	return strings.ToLower(s.Kind) + " " + ref(s.Namespace, s.Name)
}

// nodeName finds the node the event is about: the subject, the node label,
// the node of the subject pod, or the host of the instance label.
func nodeName(ctx context.Context, kc kubernetes.Interface, ev *event.Event) (string, error) {
	s := SubjectOf(ev)
	if s.Node != "" {
		return s.Node, nil
	}
	if s.Kind == "Pod" && s.Name != "" && s.Namespace != "" {
		pod, err := kc.CoreV1().Pods(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil {
			if pod = rawPod(ev, s.Namespace, s.Name); pod == nil {
				return "", call{verb: "get", resource: "pods", namespace: s.Namespace, name: s.Name}.explain(err)
			}
		}
		if pod.Spec.NodeName == "" {
			return "", problemf("pod %s is not scheduled on a node", ref(s.Namespace, s.Name))
		}
		return pod.Spec.NodeName, nil
	}
	if inst := ev.Labels["instance"]; inst != "" {
		return instanceHost(inst), nil
	}
	return "", problemf("the event names no node (labels node or instance)")
}

func itoa(n int) string { return strconv.Itoa(n) }
