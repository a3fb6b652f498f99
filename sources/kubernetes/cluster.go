package kubernetes

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
)

var (
	jobGVK   = batchv1.SchemeGroupVersion.WithKind("Job")
	nodeGVK  = corev1.SchemeGroupVersion.WithKind("Node")
	eventGVK = corev1.SchemeGroupVersion.WithKind("Event")
)

// onJob reports a Job whose Failed condition is true, once per transition
// (the condition's transition time is part of the ID).
func (d *Detector) onJob(obj any) {
	j, ok := obj.(*batchv1.Job)
	if !ok || !d.wants(event.KindJobFailure) {
		return
	}
	var failed *batchv1.JobCondition
	for i := range j.Status.Conditions {
		c := &j.Status.Conditions[i]
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			failed = c
		}
	}
	if failed == nil {
		return
	}
	owner := d.ownerOf(j.Namespace, "Job", j.Name, j.OwnerReferences)
	when := failed.LastTransitionTime.Time
	if when.IsZero() {
		when = failed.LastProbeTime.Time
	}
	facts := map[string]string{
		kubeevent.LabelNamespace: j.Namespace,
		kubeevent.LabelJob:       j.Name,
		kubeevent.LabelReason:    failed.Reason,
		kubeevent.LabelOwnerKind: owner.Kind,
		kubeevent.LabelOwnerName: owner.Name,
		"failed_pods":            strconv.Itoa(int(j.Status.Failed)),
	}
	ev := event.Event{
		Kind:        event.KindJobFailure,
		Source:      kubeevent.Source,
		Status:      event.StatusFiring,
		Severity:    event.SeverityHigh,
		Title:       fmt.Sprintf("Job %s/%s failed", j.Namespace, j.Name),
		Description: failed.Message,
		Labels:      eventLabels(j.Labels, facts),
		Annotations: eventAnnotations(j.Annotations),
		Subject:     event.Subject{Kind: "Job", Namespace: j.Namespace, Name: j.Name},
		StartsAt:    when.UTC(),
		Raw:         rawJSON(j, jobGVK),
	}
	if failed.Reason != "" {
		ev.Title += " (" + failed.Reason + ")"
	}
	ev.ID = occurrenceID(event.KindJobFailure, string(j.UID), when.UTC().Format(time.RFC3339))
	ev.Fingerprint = ev.ID
	if when.IsZero() {
		when = d.clock.Now()
	}
	d.offer(candidate{ev: ev, subject: workloadSubject(j.Namespace, owner), factTime: when})
}

// --- nodes: duration ---------------------------------------------------------

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

// onWarningEvent reports core/v1 Events of type Warning, once per event and
// count (a repeated event is a new occurrence; the rate limit per involved
// object and reason keeps repeats quiet).
func (d *Detector) onWarningEvent(obj any) {
	e, ok := obj.(*corev1.Event)
	if !ok || e.Type != corev1.EventTypeWarning || !d.wants(event.KindKubernetesWarningEvent) {
		return
	}
	io := e.InvolvedObject
	count := e.Count
	if e.Series != nil && e.Series.Count > count {
		count = e.Series.Count
	}
	when := latest(e.LastTimestamp.Time, e.FirstTimestamp.Time, e.EventTime.Time, e.CreationTimestamp.Time)
	if e.Series != nil {
		when = latest(when, e.Series.LastObservedTime.Time)
	}
	source := e.Source.Component
	if source == "" {
		source = e.ReportingController
	}
	ns := io.Namespace
	if ns == "" {
		ns = e.Namespace
	}
	facts := map[string]string{
		kubeevent.LabelNamespace:    ns,
		kubeevent.LabelReason:       e.Reason,
		kubeevent.LabelCount:        strconv.Itoa(int(count)),
		kubeevent.LabelInvolvedKind: io.Kind,
		kubeevent.LabelInvolvedName: io.Name,
		kubeevent.LabelSource:       source,
		kubeevent.LabelName:         io.Name,
		kubeevent.LabelKind:         io.Kind,
	}
	subject := event.Subject{Kind: io.Kind, Namespace: ns, Name: io.Name, Node: e.Source.Host}
	if c := containerOfFieldPath(io.FieldPath); c != "" {
		subject.Container = c
		facts[kubeevent.LabelContainer] = c
	}
	var objLabels map[string]string
	if io.Kind == "Pod" {
		facts[kubeevent.LabelPod] = io.Name
		if p, ok := d.cached(ns, "pods", io.Name).(*corev1.Pod); ok {
			objLabels = p.Labels
			if subject.Node == "" {
				subject.Node = p.Spec.NodeName
			}
			owner := d.ownerOf(ns, "Pod", p.Name, p.OwnerReferences)
			facts[kubeevent.LabelOwnerKind], facts[kubeevent.LabelOwnerName] = owner.Kind, owner.Name
		}
	}
	if io.Kind == "Node" {
		facts[kubeevent.LabelNode] = io.Name
		subject.Node = io.Name
	}
	if subject.Node != "" && facts[kubeevent.LabelNode] == "" {
		facts[kubeevent.LabelNode] = subject.Node
	}
	ann := eventAnnotations(e.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	ann[kubeevent.AnnotationMessage] = e.Message
	target := io.Kind + " " + io.Name
	if ns != "" {
		target = io.Kind + " " + ns + "/" + io.Name
	}
	ev := event.Event{
		Kind:        event.KindKubernetesWarningEvent,
		Source:      kubeevent.Source,
		Status:      event.StatusFiring,
		Severity:    event.SeverityWarning,
		Title:       fmt.Sprintf("Warning %s on %s: %s", e.Reason, target, firstLine(e.Message, 160)),
		Description: e.Message,
		Labels:      eventLabels(objLabels, facts),
		Annotations: ann,
		Subject:     subject,
		StartsAt:    when.UTC(),
		Raw:         rawJSON(e, eventGVK),
	}
	ev.ID = occurrenceID(event.KindKubernetesWarningEvent, string(e.UID), strconv.Itoa(int(count)), when.UTC().Format(time.RFC3339))
	ev.Fingerprint = ev.ID
	limitOn := string(io.UID)
	if limitOn == "" {
		limitOn = io.Kind + "/" + ns + "/" + io.Name
	}
	d.offer(candidate{ev: ev, subject: limitOn + "/" + e.Reason, factTime: when})
}

// containerOfFieldPath reads "spec.containers{app}" → "app".
func containerOfFieldPath(fp string) string {
	for _, prefix := range []string{"spec.containers{", "spec.initContainers{", "spec.ephemeralContainers{"} {
		if rest, ok := strings.CutPrefix(fp, prefix); ok {
			if c, _, ok := strings.Cut(rest, "}"); ok {
				return c
			}
		}
	}
	return ""
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
