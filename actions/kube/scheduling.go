package kube

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

// SchedulingParams are report_scheduling_failure's parameters.
type SchedulingParams struct {
	// MaxNodes bounds the per-node table (the nodes that come closest to
	// fitting are shown first).
	MaxNodes int `yaml:"max_nodes"`
}

// Validate bounds max_nodes.
func (p *SchedulingParams) Validate() error {
	if p.MaxNodes < 1 || p.MaxNodes > 200 {
		return fmt.Errorf("max_nodes must be between 1 and 200, got %d", p.MaxNodes)
	}
	return nil
}

func addScheduling(r *actions.Registry) {
	actions.Add(r, "report_scheduling_failure",
		"For a Pending pod (or the least healthy pod of the subject's workload): the scheduler's reasons, counted by node, with what each means, and every node checked the way the scheduler does (cordon, taints, node selector and affinity, free cpu, memory and pod slots after the requests of the pods already there). Robusta's report_scheduling_failure.",
		func() *SchedulingParams { return &SchedulingParams{MaxNodes: 20} },
		func(p *SchedulingParams) (actions.Runner[kubeDeps], error) {
			maxNodes := p.MaxNodes
			return runOnPod("report_scheduling_failure", "Scheduling", func(ctx context.Context, kc kubernetes.Interface, rp *resolvedPod, f *event.Finding) error {
				pod := rp.Pod
				if pod.Spec.NodeName != "" {
					return problemf("pod %s is scheduled on node %s: nothing failed to schedule", ref(pod.Namespace, pod.Name), pod.Spec.NodeName)
				}
				in := SchedulingInput{Pod: pod, MaxNodes: maxNodes}
				var err error
				if in.Events, err = objectEvents(ctx, kc, "Pod", pod.Namespace, pod.Name); err != nil {
					in.Missing = append(in.Missing, err.Error())
				}
				nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
				if err != nil {
					in.Missing = append(in.Missing, call{verb: "list", resource: "nodes"}.explain(err).Error())
				} else {
					in.Nodes = nodes.Items
					// Only pods bound to a node and not finished hold requests.
					sel := fields.AndSelectors(fields.OneTermNotEqualSelector("spec.nodeName", ""),
						fields.OneTermNotEqualSelector("status.phase", string(corev1.PodSucceeded)),
						fields.OneTermNotEqualSelector("status.phase", string(corev1.PodFailed)))
					pods, err := kc.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: sel.String()})
					if err != nil {
						in.Missing = append(in.Missing, call{verb: "list", resource: "pods"}.explain(err).Error())
					} else {
						in.Pods = pods.Items
					}
				}
				f.Add(event.Enrichment{
					Title:  "Why pod " + ref(pod.Namespace, pod.Name) + " is not scheduled",
					Source: "report_scheduling_failure",
					Blocks: append(rp.preface(), SchedulingBlocks(in)...),
				})
				return nil
			}), nil
		})
}

// SchedulingInput is what SchedulingBlocks reports from.
type SchedulingInput struct {
	Pod    *corev1.Pod
	Events []corev1.Event
	// Nodes and Pods (every pod bound to a node) are nil when they could
	// not be read; Missing says why.
	Nodes    []corev1.Node
	Pods     []corev1.Pod
	MaxNodes int
	Missing  []string
}

// schedulerReasonRE splits "0/6 nodes are available: 1 node(s) had …, 2
// Insufficient memory. preemption: …" into its reasons.
var (
	schedulerHeadRE   = regexp.MustCompile(`^(\d+)/(\d+) nodes are available:\s*`)
	schedulerReasonRE = regexp.MustCompile(`(?:^|,\s*)(\d+) `)
)

// SchedulerReasons parses the scheduler's message into (nodes, reason)
// pairs; a reason without a count (a pod-level one, such as unbound
// PersistentVolumeClaims) has count "".
func SchedulerReasons(msg string) [][2]string {
	msg = strings.TrimSpace(preemptionRE.ReplaceAllString(oneLine(msg), ""))
	msg = strings.TrimSuffix(msg, ".")
	body := schedulerHeadRE.ReplaceAllString(msg, "")
	if body == msg && !strings.Contains(msg, "nodes are available") {
		return [][2]string{{"", msg}}
	}
	locs := schedulerReasonRE.FindAllStringSubmatchIndex(body, -1)
	var out [][2]string
	if len(locs) == 0 || locs[0][0] > 0 {
		end := len(body)
		if len(locs) > 0 {
			end = locs[0][0]
		}
		if r := strings.Trim(body[:end], " ,."); r != "" {
			out = append(out, [2]string{"", r})
		}
	}
	for i, l := range locs {
		end := len(body)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		out = append(out, [2]string{body[l[2]:l[3]], strings.Trim(body[l[1]:end], " ,.")})
	}
	return out
}

// reasonHint says what a scheduler reason means for the on-call engineer.
func reasonHint(reason string, pod *corev1.Pod) string {
	switch r := reason; {
	case strings.HasPrefix(r, "Insufficient "):
		res := corev1.ResourceName(strings.TrimPrefix(r, "Insufficient "))
		q := podRequest(pod, res)
		return fmt.Sprintf("the pod requests %s of %s, more than these nodes have left: lower the request, free capacity, or add nodes", fmtQuantity(res, q), res)
	case strings.Contains(r, "untolerated taint"), strings.Contains(r, "had taint"):
		return "the nodes are tainted: add a toleration to the pod, or schedule it elsewhere"
	case strings.Contains(r, "node affinity/selector"), strings.Contains(r, "node selector"):
		if sel := fmtMap(pod.Spec.NodeSelector); sel != "" {
			return "no node has the labels the pod selects: " + sel
		}
		return "no node matches the pod's required node affinity"
	case strings.Contains(r, "volume node affinity conflict"):
		return "the pod's volumes are bound to nodes (a zone) these nodes are not in"
	case strings.Contains(r, "unbound immediate PersistentVolumeClaims"), strings.Contains(r, "unbound PersistentVolumeClaim"):
		return "a PersistentVolumeClaim is not bound: see its events (storage class, provisioner)"
	case strings.Contains(r, "were unschedulable"):
		return "the nodes are cordoned"
	case strings.Contains(r, "free ports"):
		return "the pod's hostPort is taken on these nodes"
	case strings.Contains(r, "anti-affinity"):
		return "pods already on these nodes repel this one (pod anti-affinity)"
	case strings.Contains(r, "pod affinity"):
		return "no node runs the pods this one must run next to (pod affinity)"
	case strings.Contains(r, "Too many pods"):
		return "the nodes are at their pod limit"
	}
	return ""
}

// SchedulingBlocks renders the scheduler's reasons and the per-node view.
func SchedulingBlocks(in SchedulingInput) []event.Block {
	pod := in.Pod
	var msg, since string
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			msg, since = c.Message, fmtTime(c.LastTransitionTime)
		}
	}
	attempts := ""
	if e := latestEvent(in.Events, "FailedScheduling", ""); e != nil {
		msg = firstNonEmpty(msg, e.Message)
		if n := eventCount(e); n > 1 {
			attempts = fmt.Sprintf(", %d attempts", n)
		}
	}
	var blocks []event.Block
	head := "Pod " + ref(pod.Namespace, pod.Name) + " is " + PodStatusWord(pod)
	if since != "" {
		head += " (unscheduled since " + since + attempts + ")"
	}
	if msg == "" {
		blocks = append(blocks, event.MarkdownBlock(head+"; the scheduler has not said why yet."))
	} else {
		said := strings.TrimSpace(preemptionRE.ReplaceAllString(oneLine(msg), ""))
		blocks = append(blocks, event.MarkdownBlock(head+". The scheduler: "+truncate(said, 400)))
		var rows [][]string
		for _, r := range SchedulerReasons(msg) {
			rows = append(rows, []string{r[0], r[1], reasonHint(r[1], pod)})
		}
		blocks = append(blocks, table([]string{"nodes", "reason", "what it means"}, rows))
	}
	if in.Nodes != nil {
		blocks = append(blocks, nodeFitBlock(in))
	}
	for _, m := range in.Missing {
		blocks = append(blocks, event.MarkdownBlock("⚠ "+m))
	}
	return blocks
}

// nodeFitBlock checks every node as the scheduler's filters do, for the
// causes medic can see from the API: cordon, taints, node selector and
// required node affinity, and requests against what is left.
func nodeFitBlock(in SchedulingInput) event.Block {
	pod := in.Pod
	byNode := map[string][]*corev1.Pod{}
	for i := range in.Pods {
		p := &in.Pods[i]
		if p.Spec.NodeName != "" && active(p) && (p.Namespace != pod.Namespace || p.Name != pod.Name) {
			byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
		}
	}
	requests := map[corev1.ResourceName]resource.Quantity{}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		requests[res] = podRequest(pod, res)
	}
	for _, c := range pod.Spec.Containers {
		for res := range c.Resources.Requests {
			if _, ok := requests[res]; !ok {
				requests[res] = podRequest(pod, res)
			}
		}
	}
	type fit struct {
		name    string
		reasons []string
		free    map[corev1.ResourceName]resource.Quantity
	}
	fits := make([]fit, 0, len(in.Nodes))
	for i := range in.Nodes {
		n := &in.Nodes[i]
		f := fit{name: n.Name, free: map[corev1.ResourceName]resource.Quantity{}}
		if n.Spec.Unschedulable {
			f.reasons = append(f.reasons, "cordoned")
		}
		if t := untoleratedTaints(pod, n); len(t) > 0 {
			f.reasons = append(f.reasons, "taint "+strings.Join(t, ", ")+" not tolerated")
		}
		if miss := selectorMisses(pod, n); miss != "" {
			f.reasons = append(f.reasons, miss)
		}
		pods := byNode[n.Name]
		for res, want := range requests {
			alloc, ok := n.Status.Allocatable[res]
			if !ok && want.IsZero() {
				continue
			}
			left := alloc.DeepCopy()
			for _, p := range pods {
				left.Sub(podRequest(p, res))
			}
			f.free[res] = left
			if !want.IsZero() && want.Cmp(left) > 0 {
				f.reasons = append(f.reasons, fmt.Sprintf("Insufficient %s (requests %s, %s left)", res, fmtQuantity(res, want), fmtLeft(res, left)))
			}
		}
		if maxPods, ok := n.Status.Allocatable[corev1.ResourcePods]; ok && int64(len(pods)) >= maxPods.Value() {
			f.reasons = append(f.reasons, fmt.Sprintf("Too many pods (%d of %d)", len(pods), maxPods.Value()))
		}
		slices.Sort(f.reasons)
		fits = append(fits, f)
	}
	// Nodes that fit, then the closest to fitting.
	slices.SortStableFunc(fits, func(a, b fit) int {
		if c := len(a.reasons) - len(b.reasons); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	rows := make([][]string, 0, len(fits))
	for i, f := range fits {
		if i == in.MaxNodes {
			rows = append(rows, []string{fmt.Sprintf("… %d more nodes", len(fits)-i), "", "", ""})
			break
		}
		why := strings.Join(f.reasons, "; ")
		if why == "" {
			why = "fits now (the cause may have passed, or is one medic cannot see: volumes, pod affinity, ports)"
		}
		cpu, mem := f.free[corev1.ResourceCPU], f.free[corev1.ResourceMemory]
		rows = append(rows, []string{f.name, why, fmtLeft(corev1.ResourceCPU, cpu), fmtLeft(corev1.ResourceMemory, mem)})
	}
	if len(rows) == 0 {
		return event.MarkdownBlock("The cluster has no nodes.")
	}
	return table([]string{"node", "why not", "cpu left", "memory left"}, rows)
}

// untoleratedTaints lists the node's NoSchedule and NoExecute taints the
// pod does not tolerate.
func untoleratedTaints(pod *corev1.Pod, n *corev1.Node) []string {
	var out []string
	for i := range n.Spec.Taints {
		t := &n.Spec.Taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		tolerated := slices.ContainsFunc(pod.Spec.Tolerations, func(tol corev1.Toleration) bool {
			return tol.ToleratesTaint(klog.Background(), t, false)
		})
		if !tolerated {
			out = append(out, t.ToString())
		}
	}
	return out
}

// selectorMisses says how the node fails the pod's node selector or
// required node affinity, or "".
func selectorMisses(pod *corev1.Pod, n *corev1.Node) string {
	var miss []string
	for k, v := range pod.Spec.NodeSelector {
		if have, ok := n.Labels[k]; !ok || have != v {
			miss = append(miss, k+"="+v)
		}
	}
	slices.Sort(miss)
	if len(miss) > 0 {
		return "lacks label " + strings.Join(miss, ", ")
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	for _, term := range terms {
		if matchesTerm(term, n) {
			return ""
		}
	}
	return "does not match the required node affinity"
}

// matchesTerm evaluates one node selector term (its expressions and
// fields, all of which must hold).
func matchesTerm(term corev1.NodeSelectorTerm, n *corev1.Node) bool {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return false // an empty term matches nothing
	}
	for _, e := range term.MatchExpressions {
		r, err := labels.NewRequirement(e.Key, nodeSelectorOp(e.Operator), e.Values)
		if err != nil || !r.Matches(labels.Set(n.Labels)) {
			return false
		}
	}
	for _, e := range term.MatchFields {
		if e.Key != "metadata.name" {
			return false
		}
		in := slices.Contains(e.Values, n.Name)
		if (e.Operator == corev1.NodeSelectorOpIn) != in {
			return false
		}
	}
	return true
}

func nodeSelectorOp(op corev1.NodeSelectorOperator) selection.Operator {
	switch op {
	case corev1.NodeSelectorOpIn:
		return selection.In
	case corev1.NodeSelectorOpNotIn:
		return selection.NotIn
	case corev1.NodeSelectorOpExists:
		return selection.Exists
	case corev1.NodeSelectorOpDoesNotExist:
		return selection.DoesNotExist
	case corev1.NodeSelectorOpGt:
		return selection.GreaterThan
	case corev1.NodeSelectorOpLt:
		return selection.LessThan
	}
	return selection.Operator(strconv.Quote(string(op))) // invalid: NewRequirement refuses it
}

// fmtLeft renders what is left of a resource; requests can exceed
// allocatable (static pods, a shrunk node), which leaves nothing.
func fmtLeft(res corev1.ResourceName, q resource.Quantity) string {
	if q.Sign() < 0 {
		return "0"
	}
	return fmtQuantity(res, q)
}
