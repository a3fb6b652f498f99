package kube

import (
	"context"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

func addNode(r *actions.Registry) {
	actions.Add(r, "node_status_enricher",
		"Add the node's conditions, versions, taints, allocatable resources against what its pods request, and the pods running on it. The node is the subject, the node label, the subject pod's node, or the host of the instance label.",
		func() *PodsParams { return &PodsParams{MaxPods: 30} },
		func(p *PodsParams) (actions.Runner[kubeDeps], error) {
			maxPods := p.MaxPods
			return runOnCluster("node_status_enricher", "Node status", func(ctx context.Context, kc kubernetes.Interface, f *event.Finding) error {
				name, err := nodeName(ctx, kc, &f.Event)
				if err != nil {
					return err
				}
				node, err := getNode(ctx, kc, name)
				if err != nil {
					return err
				}
				blocks := NodeBlocks(node)
				pods, err := nodePods(ctx, kc, node.Name)
				if err != nil {
					blocks = append(blocks, event.MarkdownBlock("⚠ "+err.Error()))
				} else {
					blocks = append(blocks, NodeResourcesBlock(node, pods), NodePodsBlock(pods, maxPods))
				}
				f.Add(event.Enrichment{Title: "Node " + node.Name, Source: "node_status_enricher", Blocks: blocks})
				return nil
			}), nil
		})
}

// getNode gets a node by name, or, when the name is an address from an
// instance label, the node that has that address.
func getNode(ctx context.Context, kc kubernetes.Interface, name string) (*corev1.Node, error) {
	node, err := kc.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return node, nil
	}
	c := call{verb: "get", resource: "nodes", name: name}
	if !apierrors.IsNotFound(err) {
		return nil, c.explain(err)
	}
	list, lerr := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if lerr != nil {
		return nil, c.explain(err)
	}
	for i := range list.Items {
		for _, a := range list.Items[i].Status.Addresses {
			if a.Address == name {
				return &list.Items[i], nil
			}
		}
	}
	return nil, c.explain(err)
}

// nodePods lists the pods scheduled on a node.
func nodePods(ctx context.Context, kc kubernetes.Interface, node string) ([]corev1.Pod, error) {
	sel := fields.OneTermEqualSelector("spec.nodeName", node).String()
	list, err := kc.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil, call{verb: "list", resource: "pods"}.explain(err)
	}
	return slices.DeleteFunc(list.Items, func(p corev1.Pod) bool { return p.Spec.NodeName != node }), nil
}

// NodeBlocks is the node's summary and conditions.
func NodeBlocks(n *corev1.Node) []event.Block {
	ready := "Unknown"
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = string(c.Status)
			if c.Status != corev1.ConditionTrue && c.Reason != "" {
				ready += " (" + c.Reason + ")"
			}
		}
	}
	var roles []string
	for k := range n.Labels {
		if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && r != "" {
			roles = append(roles, r)
		}
	}
	sort.Strings(roles)
	var taints []string
	for _, t := range n.Spec.Taints {
		s := t.Key
		if t.Value != "" {
			s += "=" + t.Value
		}
		taints = append(taints, s+":"+string(t.Effect))
	}
	var addrs []string
	for _, a := range n.Status.Addresses {
		addrs = append(addrs, string(a.Type)+" "+a.Address)
	}
	cordoned := ""
	if n.Spec.Unschedulable {
		cordoned = "yes (cordoned)"
	}
	info := n.Status.NodeInfo
	blocks := []event.Block{kv(
		[2]string{"ready", ready},
		[2]string{"unschedulable", cordoned},
		[2]string{"roles", strings.Join(roles, ", ")},
		[2]string{"taints", strings.Join(taints, ", ")},
		[2]string{"addresses", strings.Join(addrs, ", ")},
		[2]string{"kubelet", info.KubeletVersion},
		[2]string{"OS", strings.TrimSpace(info.OSImage + " " + info.Architecture)},
		[2]string{"kernel", info.KernelVersion},
		[2]string{"container runtime", info.ContainerRuntimeVersion},
		[2]string{"instance type", firstNonEmpty(n.Labels["node.kubernetes.io/instance-type"], n.Labels["beta.kubernetes.io/instance-type"])},
		[2]string{"zone", n.Labels["topology.kubernetes.io/zone"]},
		[2]string{"created", fmtTime(n.CreationTimestamp)},
	)}
	return withConditions(blocks, n.Status.Conditions, func(c corev1.NodeCondition) []string {
		return conditionRow(string(c.Type), c.Status, c.Reason, c.Message, c.LastTransitionTime)
	})
}

// active says whether a pod holds its requests on the node.
func active(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// podRequest is a pod's effective request of a resource: the larger of the
// sum over its containers and its largest init container, as the scheduler
// counts it, plus its overhead.
func podRequest(p *corev1.Pod, name corev1.ResourceName) resource.Quantity {
	var sum resource.Quantity
	for _, c := range p.Spec.Containers {
		if q, ok := c.Resources.Requests[name]; ok {
			sum.Add(q)
		}
	}
	for _, c := range p.Spec.InitContainers {
		if q, ok := c.Resources.Requests[name]; ok && q.Cmp(sum) > 0 {
			sum = q.DeepCopy()
		}
	}
	if q, ok := p.Spec.Overhead[name]; ok {
		sum.Add(q)
	}
	return sum
}

// NodeResourcesBlock compares what the node offers with what its running
// pods request: the scheduler's view of how full it is.
func NodeResourcesBlock(n *corev1.Node, pods []corev1.Pod) event.Block {
	names := make([]string, 0, len(n.Status.Allocatable))
	for r := range n.Status.Allocatable {
		if strings.HasPrefix(string(r), "hugepages-") {
			continue
		}
		names = append(names, string(r))
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(resourceOrder(a), resourceOrder(b)) })
	running := 0
	for i := range pods {
		if active(&pods[i]) {
			running++
		}
	}
	rows := make([][]string, 0, len(names))
	for _, name := range names {
		rn := corev1.ResourceName(name)
		alloc := n.Status.Allocatable[rn]
		var used resource.Quantity
		if rn == corev1.ResourcePods {
			used = *resource.NewQuantity(int64(running), resource.DecimalSI)
		} else {
			for i := range pods {
				if active(&pods[i]) {
					q := podRequest(&pods[i], rn)
					used.Add(q)
				}
			}
		}
		capacity := n.Status.Capacity[rn]
		rows = append(rows, []string{name, fmtQuantity(rn, capacity), fmtQuantity(rn, alloc), fmtQuantity(rn, used), percent(used, alloc)})
	}
	return table([]string{"resource", "capacity", "allocatable", "requested", "requested %"}, rows)
}

// NodePodsBlock lists the pods on the node, least healthy first, with
// their requests.
func NodePodsBlock(pods []corev1.Pod, max int) event.Block {
	if len(pods) == 0 {
		return event.MarkdownBlock("No pods run on the node.")
	}
	return podTable(pods, max, []string{"pod", "status", "ready", "restarts", "cpu request", "memory request"}, func(p *corev1.Pod) []string {
		cpu, mem := podRequest(p, corev1.ResourceCPU), podRequest(p, corev1.ResourceMemory)
		return []string{ref(p.Namespace, p.Name), PodStatusWord(p), readyCount(p),
			strconv.Itoa(int(totalRestarts(p))), qty(cpu), memQty(mem)}
	})
}

func qty(q resource.Quantity) string {
	if q.IsZero() {
		return "-"
	}
	return q.String()
}

func memQty(q resource.Quantity) string {
	if q.IsZero() {
		return "-"
	}
	return humanBytes(q)
}
