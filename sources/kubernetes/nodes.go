package kubernetes

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
)

var nodeGVK = corev1.SchemeGroupVersion.WithKind("Node")

func nodeReady(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func (d *Detector) onNode(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	n, ok := obj.(*corev1.Node)
	if !ok || !d.wants(event.KindNodeNotReady) {
		return
	}
	if r := nodeReady(n); r != nil && r.Status == corev1.ConditionTrue {
		d.disarm(prefixNode + n.Name) // the usual heartbeat: nothing to do
		return
	}
	d.enqueue(prefixNode + n.Name)
}

// checkNode fires the on_node_not_ready triggers whose duration has passed
// since the Ready condition left True, and re-checks at the next one. The
// transition time comes from the node, so replicas and restarts agree.
func (d *Detector) checkNode(name string) {
	obj, ok, _ := d.cluster.Core().V1().Nodes().Informer().GetIndexer().GetByKey(name)
	n, _ := obj.(*corev1.Node)
	ready := (*corev1.NodeCondition)(nil)
	if ok && n != nil {
		ready = nodeReady(n)
	}
	if ready == nil || ready.Status == corev1.ConditionTrue {
		d.disarm(prefixNode + name)
		return
	}
	since := ready.LastTransitionTime.Time
	now := d.clock.Now()
	var next time.Time
	for _, delay := range d.interest.Load().Delays(event.KindNodeNotReady) {
		due := since.Add(delay)
		if now.Before(due) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		facts := map[string]string{
			kubeevent.LabelNode:        n.Name,
			kubeevent.LabelName:        n.Name,
			kubeevent.LabelReason:      ready.Reason,
			kubeevent.LabelStatus:      string(ready.Status),
			kubeevent.LabelNotReadyFor: delay.String(),
		}
		ev := event.Event{
			Kind:        event.KindNodeNotReady,
			Source:      kubeevent.Source,
			Status:      event.StatusFiring,
			Severity:    event.SeverityHigh,
			Title:       fmt.Sprintf("Node %s is not ready (Ready=%s for over %s)", n.Name, ready.Status, delay),
			Description: ready.Message,
			Labels:      eventLabels(n.Labels, facts),
			Annotations: eventAnnotations(n.Annotations),
			Subject:     event.Subject{Kind: "Node", Name: n.Name, Node: n.Name},
			StartsAt:    since.UTC(),
			Raw:         rawJSON(n, nodeGVK),
		}
		if ready.Reason != "" {
			ev.Title = fmt.Sprintf("Node %s is not ready (%s, for over %s)", n.Name, ready.Reason, delay)
		}
		ev.ID = occurrenceID(event.KindNodeNotReady, string(n.UID), since.UTC().Format(time.RFC3339), delay.String())
		ev.Fingerprint = ev.ID
		d.offer(candidate{ev: ev, subject: "node/" + n.Name})
	}
	if next.IsZero() {
		d.disarm(prefixNode + name)
	} else {
		d.after(prefixNode+name, next)
	}
}

// --- warning events ----------------------------------------------------------
