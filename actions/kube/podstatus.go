package kube

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

func addPodStatus(r *actions.Registry) {
	actions.Add(r, "pod_status_enricher",
		"Add a compact `kubectl describe` of the pod: phase, node, conditions, each container's state with its reason, exit code, restarts, last termination, requests and limits.",
		func() *actions.NoParams { return &actions.NoParams{} },
		func(*actions.NoParams) (actions.Runner[kubeDeps], error) {
			return runOnPod("pod_status_enricher", "Pod status", func(ctx context.Context, kc kubernetes.Interface, rp *resolvedPod, f *event.Finding) error {
				f.Add(event.Enrichment{
					Title:  "Pod " + ref(rp.Pod.Namespace, rp.Pod.Name),
					Source: "pod_status_enricher",
					Blocks: append(rp.preface(), PodStatusBlocks(rp.Pod)...),
				})
				return nil
			}), nil
		})
}

// preface says why this pod was chosen, or that it is a snapshot.
func (rp *resolvedPod) preface() []event.Block {
	var out []event.Block
	if rp.How != "" {
		out = append(out, event.MarkdownBlock("Pod "+ref(rp.Pod.Namespace, rp.Pod.Name)+", "+rp.How+"."))
	}
	if rp.Snapshot != "" {
		out = append(out, event.MarkdownBlock("⚠ "+rp.Snapshot+"."))
	}
	return out
}

// PodStatusBlocks is the compact describe of a pod: a key-value summary, the
// containers (init containers first) and the conditions.
func PodStatusBlocks(pod *corev1.Pod) []event.Block {
	phase := string(pod.Status.Phase)
	if pod.Status.Reason != "" {
		phase += " (" + pod.Status.Reason + ")"
	}
	if pod.DeletionTimestamp != nil {
		phase += ", terminating since " + fmtTime(*pod.DeletionTimestamp)
	}
	var owner string
	if o := metav1.GetControllerOf(pod); o != nil {
		owner = o.Kind + "/" + o.Name
	}
	node := pod.Spec.NodeName
	if node == "" {
		node = "(not scheduled)"
	}
	summary := kv(
		[2]string{"status", PodStatusWord(pod)},
		[2]string{"phase", phase},
		[2]string{"message", oneLine(pod.Status.Message)},
		[2]string{"node", node},
		[2]string{"node selector", fmtMap(pod.Spec.NodeSelector)},
		[2]string{"started", fmtTimePtr(pod.Status.StartTime)},
		[2]string{"controlled by", owner},
		[2]string{"QoS class", string(pod.Status.QOSClass)},
		[2]string{"restarts", strconv.Itoa(int(totalRestarts(pod)))},
	)
	blocks := []event.Block{summary}

	rows := [][]string{}
	var messages [][2]string
	add := func(c corev1.Container, st *corev1.ContainerStatus, init bool) {
		name := c.Name
		if init {
			name += " (init)"
		}
		row := []string{name, c.Image, "", "", "", "", fmtResources(c.Resources.Requests), fmtResources(c.Resources.Limits)}
		if st != nil {
			row[2] = stateText(st.State)
			row[3] = strconv.FormatBool(st.Ready)
			row[4] = strconv.Itoa(int(st.RestartCount))
			row[5] = terminationText(st.LastTerminationState.Terminated)
			if m := stateMessage(st); m != "" {
				messages = append(messages, [2]string{name, m})
			}
		} else {
			row[2] = "(no status yet)"
		}
		rows = append(rows, row)
	}
	for _, c := range pod.Spec.InitContainers {
		add(c, containerStatus(pod.Status.InitContainerStatuses, c.Name), true)
	}
	for _, c := range pod.Spec.Containers {
		add(c, containerStatus(pod.Status.ContainerStatuses, c.Name), false)
	}
	if len(rows) > 0 {
		blocks = append(blocks, table([]string{"container", "image", "state", "ready", "restarts", "last termination", "requests", "limits"}, rows))
	}
	if len(messages) > 0 {
		blocks = append(blocks, event.KeyValueBlock(messages))
	}
	return withConditions(blocks, pod.Status.Conditions, func(c corev1.PodCondition) []string {
		return conditionRow(string(c.Type), c.Status, c.Reason, c.Message, c.LastTransitionTime)
	})
}

func containerStatus(list []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

// stateText is "Running", "Waiting: CrashLoopBackOff", "Terminated:
// Completed (exit 0)".
func stateText(s corev1.ContainerState) string {
	switch {
	case s.Waiting != nil:
		return "Waiting: " + firstNonEmpty(s.Waiting.Reason, "unknown reason")
	case s.Running != nil:
		return "Running since " + fmtTime(s.Running.StartedAt)
	case s.Terminated != nil:
		return "Terminated: " + terminationText(s.Terminated)
	}
	return "unknown"
}

// stateMessage is the waiting or terminated message worth showing: the
// CrashLoopBackOff back-off line only repeats the state, so it is left out.
func stateMessage(st *corev1.ContainerStatus) string {
	var m string
	switch {
	case st.State.Waiting != nil:
		m = st.State.Waiting.Message
		if st.State.Waiting.Reason == "CrashLoopBackOff" {
			m = ""
		}
	case st.State.Terminated != nil:
		m = st.State.Terminated.Message
	}
	if m == "" && st.LastTerminationState.Terminated != nil {
		m = st.LastTerminationState.Terminated.Message
	}
	return truncate(oneLine(m), 300)
}

// terminationText is "OOMKilled (exit 137) at 2025-… UTC".
func terminationText(t *corev1.ContainerStateTerminated) string {
	if t == nil {
		return ""
	}
	s := firstNonEmpty(t.Reason, "Terminated") + " (exit " + strconv.Itoa(int(t.ExitCode))
	if t.Signal != 0 {
		s += ", signal " + strconv.Itoa(int(t.Signal))
	}
	s += ")"
	if at := fmtTime(t.FinishedAt); at != "" {
		s += " at " + at
	}
	return s
}

func totalRestarts(pod *corev1.Pod) int32 {
	var n int32
	for _, s := range pod.Status.ContainerStatuses {
		n += s.RestartCount
	}
	for _, s := range pod.Status.InitContainerStatuses {
		n += s.RestartCount
	}
	return n
}

func fmtMap(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ", ")
}

// PodStatusWord is the STATUS column of `kubectl get pods`: the reason a
// container waits or terminated, Init:…, Terminating, or the phase.
func PodStatusWord(pod *corev1.Pod) string {
	reason := string(pod.Status.Phase)
	if pod.Status.Reason != "" {
		reason = pod.Status.Reason
	}
	initializing := false
	for i, st := range pod.Status.InitContainerStatuses {
		switch {
		case st.State.Terminated != nil && st.State.Terminated.ExitCode == 0:
			continue
		case st.State.Terminated != nil:
			reason = "Init:" + firstNonEmpty(st.State.Terminated.Reason, "ExitCode:"+strconv.Itoa(int(st.State.Terminated.ExitCode)))
		case st.State.Waiting != nil && st.State.Waiting.Reason != "" && st.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + st.State.Waiting.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		initializing = true
		break
	}
	if !initializing {
		running := false
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			st := pod.Status.ContainerStatuses[i]
			switch {
			case st.State.Waiting != nil && st.State.Waiting.Reason != "":
				reason = st.State.Waiting.Reason
			case st.State.Terminated != nil && st.State.Terminated.Reason != "":
				reason = st.State.Terminated.Reason
			case st.State.Terminated != nil:
				reason = "ExitCode:" + strconv.Itoa(int(st.State.Terminated.ExitCode))
			case st.Ready && st.State.Running != nil:
				running = true
			}
		}
		if reason == "Completed" && running {
			reason = "Running"
		}
	}
	if pod.DeletionTimestamp != nil {
		reason = "Terminating"
	}
	if reason == "" {
		reason = "Unknown"
	}
	return reason
}

// readyCount is "1/2": ready containers over containers.
func readyCount(pod *corev1.Pod) string {
	ready := 0
	for _, s := range pod.Status.ContainerStatuses {
		if s.Ready {
			ready++
		}
	}
	return fmt.Sprintf("%d/%d", ready, len(pod.Spec.Containers))
}

// unhealthiness ranks pods so the one most worth looking at comes first:
// failing containers, then not ready, then restarts.
func unhealthiness(pod *corev1.Pod) int {
	score := int(totalRestarts(pod))
	if pod.Status.Phase == corev1.PodSucceeded {
		return -1
	}
	if pod.Status.Phase != corev1.PodRunning {
		score += 10_000
	}
	for _, s := range pod.Status.ContainerStatuses {
		if !s.Ready {
			score += 1_000
		}
		if s.State.Waiting != nil && s.State.Waiting.Reason != "" && s.State.Waiting.Reason != "ContainerCreating" {
			score += 100_000
		}
		if t := s.LastTerminationState.Terminated; t != nil && t.Reason == "OOMKilled" {
			score += 50_000
		}
	}
	return score
}

// sortPodsWorstFirst orders pods by unhealthiness, then name.
func sortPodsWorstFirst(pods []corev1.Pod) {
	slices.SortStableFunc(pods, func(a, b corev1.Pod) int {
		if d := unhealthiness(&b) - unhealthiness(&a); d != 0 {
			return d
		}
		// Equally unhealthy: the newest first (a job's latest attempt).
		if as, bs := a.Status.StartTime, b.Status.StartTime; as != nil && bs != nil && !as.Equal(bs) {
			return bs.Compare(as.Time)
		}
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
}
