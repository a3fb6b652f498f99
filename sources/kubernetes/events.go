package kubernetes

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
)

var eventGVK = corev1.SchemeGroupVersion.WithKind("Event")

// onWarningEvent reports core/v1 Events of type Warning, once per event and
// count (a repeated event is a new occurrence; the trigger's rate limit per
// involved object and reason, applied by the engine, keeps repeats quiet).
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
