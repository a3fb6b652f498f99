package kubernetes

import (
	"fmt"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
)

var jobGVK = batchv1.SchemeGroupVersion.WithKind("Job")

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
