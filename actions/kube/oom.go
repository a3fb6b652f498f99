package kube

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

// OOMParams are pod_oom_killer_enricher's parameters. Robusta's graph
// options (container_memory_graph, node_memory_graph) are
// prometheus_enricher's work.
type OOMParams struct {
	// AttachLogs adds the last lines the killed container printed (its
	// previous instance), redacted as logs_enricher does.
	AttachLogs bool `yaml:"attach_logs"`
}

func addOOM(r *actions.Registry) {
	actions.Add(r, "pod_oom_killer_enricher",
		"Say whose OOM kill it was: the container's own memory limit, or the node running out of memory (kubelet's SystemOOM events, MemoryPressure, how far the node's pods overcommit its memory), with the container's request, limit and time of the kill; attach_logs adds the killed instance's last 50 lines. Robusta's pod_oom_killer_enricher.",
		func() *OOMParams { return &OOMParams{} },
		func(p *OOMParams) (actions.Runner[kubeDeps], error) {
			attachLogs := p.AttachLogs
			return runOnPod("pod_oom_killer_enricher", "OOM kill", func(ctx context.Context, kc kubernetes.Interface, rp *resolvedPod, f *event.Finding) error {
				in := OOMInput{Pod: rp.Pod}
				var err error
				if name := rp.Pod.Spec.NodeName; name != "" {
					in.NodeName = name
					if in.Node, err = getNode(ctx, kc, name); err != nil {
						in.Missing = append(in.Missing, err.Error())
					} else {
						if in.NodePods, err = nodePods(ctx, kc, name); err != nil {
							in.Missing = append(in.Missing, err.Error())
						}
						if in.NodeEvents, err = objectEvents(ctx, kc, "Node", "", name); err != nil {
							in.Missing = append(in.Missing, err.Error())
						} else {
							in.EventsRead = true
						}
					}
				}
				blocks, err := OOMBlocks(in)
				if err != nil {
					return err
				}
				if attachLogs {
					st, _ := oomKilled(rp.Pod) // found: OOMBlocks said no error
					lb, err := fetchLogs(ctx, kc, rp.Pod, st.Name, true, LogOptions{TailLines: 50, Redact: DefaultRedactions()})
					if err != nil {
						blocks = append(blocks, event.MarkdownBlock("⚠ "+err.Error()))
					} else {
						blocks = append(blocks, event.Block{Kind: event.BlockLog, Log: lb})
					}
				}
				f.Add(event.Enrichment{
					Title:  "OOM kill in pod " + ref(rp.Pod.Namespace, rp.Pod.Name),
					Source: "pod_oom_killer_enricher",
					Blocks: append(rp.preface(), blocks...),
				})
				return nil
			}), nil
		})
}

// OOMInput is what OOMBlocks judges an OOM kill from.
type OOMInput struct {
	Pod      *corev1.Pod
	NodeName string
	// Node, NodePods and NodeEvents are nil when they could not be read;
	// Missing says why.
	Node       *corev1.Node
	NodePods   []corev1.Pod
	NodeEvents []corev1.Event
	// EventsRead says NodeEvents was read (and may be empty).
	EventsRead bool
	Missing    []string
}

// systemOOMWindow is how close to the kill a SystemOOM event on the node
// must be to count as the same OOM.
const systemOOMWindow = 10 * time.Minute

// OOMBlocks renders the verdict, the killed container and its node. The
// kubelet records SystemOOM on the node only for OOMs of the root cgroup,
// that is when the node itself ran out of memory; a container killed at
// its own limit leaves none.
func OOMBlocks(in OOMInput) ([]event.Block, error) {
	pod := in.Pod
	st, t := oomKilled(pod)
	if st == nil {
		return nil, problemf("no container of pod %s was OOMKilled (by its status)", ref(pod.Namespace, pod.Name))
	}
	var spec *corev1.Container
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if list[i].Name == st.Name {
				spec = &list[i]
			}
		}
	}
	var request, limit resource.Quantity
	if spec != nil {
		request, limit = spec.Resources.Requests[corev1.ResourceMemory], spec.Resources.Limits[corev1.ResourceMemory]
	}

	// The node's side.
	var systemOOMs []corev1.Event
	for _, e := range in.NodeEvents {
		if e.Reason == "SystemOOM" && !t.FinishedAt.IsZero() {
			if d := lastSeen(&e).Sub(t.FinishedAt.Time); d > -systemOOMWindow && d < systemOOMWindow {
				systemOOMs = append(systemOOMs, e)
			}
		}
	}
	slices.SortFunc(systemOOMs, func(a, b corev1.Event) int { return lastSeen(&a).Compare(lastSeen(&b)) })
	var lastSystemOOM string
	if n := len(systemOOMs); n > 0 {
		lastSystemOOM = lastSeen(&systemOOMs[n-1]).UTC().Format(timeLayout)
	}
	var pressure *corev1.NodeCondition
	var allocatable, requested, limited resource.Quantity
	nActive := 0
	if in.Node != nil {
		for i, c := range in.Node.Status.Conditions {
			if c.Type == corev1.NodeMemoryPressure {
				pressure = &in.Node.Status.Conditions[i]
			}
		}
		allocatable = in.Node.Status.Allocatable[corev1.ResourceMemory]
		for i := range in.NodePods {
			p := &in.NodePods[i]
			if !active(p) {
				continue
			}
			nActive++
			requested.Add(podRequest(p, corev1.ResourceMemory))
			limited.Add(podLimit(p, corev1.ResourceMemory))
		}
	}

	who := "Container " + st.Name
	var verdict string
	switch {
	case len(systemOOMs) > 0:
		verdict = fmt.Sprintf("The node ran out of memory: the kubelet recorded a system OOM on %s at %s, and the kernel chose %s",
			in.NodeName, lastSystemOOM, st.Name)
		if !limit.IsZero() {
			verdict += " (limit " + memQty(limit) + ")"
		}
		verdict += " to kill. Lowering what the node's pods use, or giving them requests that match their use, keeps this from happening again."
	case pressure != nil && pressure.Status == corev1.ConditionTrue:
		verdict = fmt.Sprintf("The node %s is under memory pressure (since %s): the node, not only %s's limit, is short of memory.",
			in.NodeName, fmtTime(pressure.LastTransitionTime), st.Name)
	case !limit.IsZero():
		verdict = fmt.Sprintf("%s reached its own memory limit of %s", who, memQty(limit))
		if request.Cmp(limit) < 0 {
			verdict += fmt.Sprintf(" (it requests %s, so the scheduler reserved less than it may use)", memQty(request))
		}
		verdict += ": raise the limit if the workload needs it, or find what grows (a leak, a cache, a larger input)."
	default:
		verdict = who + " has no memory limit, so it was killed when its node ran out of memory."
	}
	if in.Node != nil && !allocatable.IsZero() && limited.Cmp(allocatable) > 0 {
		verdict += fmt.Sprintf(" The node's pods may use %s (their limits) of the %s it has: overcommitted.", memQty(limited), memQty(allocatable))
	}

	restarts := ""
	if st.RestartCount > 0 {
		restarts = strconv.Itoa(int(st.RestartCount))
	}
	blocks := []event.Block{
		event.MarkdownBlock(verdict),
		kv(
			[2]string{"container", st.Name},
			[2]string{"killed", terminationText(t)},
			[2]string{"started", fmtTime(t.StartedAt)},
			[2]string{"restarts", restarts},
			[2]string{"memory request", orNone(request)},
			[2]string{"memory limit", orNone(limit)},
			[2]string{"QoS class", string(pod.Status.QOSClass)},
		),
	}
	if in.Node != nil {
		rows := [][2]string{
			{"node", in.NodeName},
			{"allocatable memory", memQty(allocatable)},
			{"requested by its pods", fmt.Sprintf("%s%s by %d pods", memQty(requested), ofAllocatable(requested, allocatable), nActive)},
			{"their limits", memQty(limited) + ofAllocatable(limited, allocatable)},
		}
		if pressure != nil {
			rows = append(rows, [2]string{"MemoryPressure", string(pressure.Status) + " since " + fmtTime(pressure.LastTransitionTime)})
		}
		so := "none within " + fmtDuration(systemOOMWindow) + " of the kill"
		if n := len(systemOOMs); n > 0 {
			so = fmt.Sprintf("%d, the last at %s: %s", n, lastSystemOOM, truncate(oneLine(systemOOMs[n-1].Message), 160))
		}
		if in.EventsRead {
			rows = append(rows, [2]string{"system OOMs (kubelet)", so})
		}
		blocks = append(blocks, kv(rows...))
	}
	for _, m := range in.Missing {
		blocks = append(blocks, event.MarkdownBlock("⚠ "+m))
	}
	return blocks, nil
}

// oomKilled is the pod's most recently OOM-killed container and that
// termination.
func oomKilled(pod *corev1.Pod) (*corev1.ContainerStatus, *corev1.ContainerStateTerminated) {
	var (
		best *corev1.ContainerStatus
		term *corev1.ContainerStateTerminated
	)
	statuses := allStatuses(pod)
	for i := range statuses {
		s := &statuses[i]
		for _, t := range []*corev1.ContainerStateTerminated{s.State.Terminated, s.LastTerminationState.Terminated} {
			if t != nil && t.Reason == "OOMKilled" && (term == nil || t.FinishedAt.After(term.FinishedAt.Time)) {
				best, term = s, t
			}
		}
	}
	return best, term
}

// podLimit is a pod's memory (or other) limit: its containers' sum, and
// without a limit on a container, its request, which is what it may be
// assumed to use at least.
func podLimit(p *corev1.Pod, name corev1.ResourceName) resource.Quantity {
	var sum resource.Quantity
	for _, c := range p.Spec.Containers {
		if q, ok := c.Resources.Limits[name]; ok {
			sum.Add(q)
		} else if q, ok := c.Resources.Requests[name]; ok {
			sum.Add(q)
		}
	}
	return sum
}

// ofAllocatable is " (41%)", or "" when the node reports no allocatable.
func ofAllocatable(q, allocatable resource.Quantity) string {
	if p := percent(q, allocatable); p != "" {
		return " (" + p + ")"
	}
	return ""
}

func orNone(q resource.Quantity) string {
	if q.IsZero() {
		return "none"
	}
	return memQty(q)
}
