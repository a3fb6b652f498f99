package kubernetes

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
)

var podGVK = corev1.SchemeGroupVersion.WithKind("Pod")

// Waiting reasons of a container whose image cannot be pulled.
const (
	reasonImagePullBackOff = "ImagePullBackOff"
	reasonErrImagePull     = "ErrImagePull"
	reasonCrashLoopBackOff = "CrashLoopBackOff"
	reasonOOMKilled        = "OOMKilled"
	reasonEvicted          = "Evicted"
)

func pullFailing(cs *corev1.ContainerStatus) bool {
	w := cs.State.Waiting
	return w != nil && (w.Reason == reasonImagePullBackOff || w.Reason == reasonErrImagePull)
}

// allStatuses are the init and app container statuses, init first.
func allStatuses(p *corev1.Pod) []corev1.ContainerStatus {
	out := make([]corev1.ContainerStatus, 0, len(p.Status.InitContainerStatuses)+len(p.Status.ContainerStatuses))
	out = append(out, p.Status.InitContainerStatuses...)
	return append(out, p.Status.ContainerStatuses...)
}

func podKey(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

// podBase is what every pod event shares.
func (d *Detector) podBase(p *corev1.Pod, kind event.Kind, container string, facts map[string]string) (event.Event, Owner) {
	owner := d.ownerOf(p.Namespace, "Pod", p.Name, p.OwnerReferences)
	f := map[string]string{
		kubeevent.LabelNamespace: p.Namespace,
		kubeevent.LabelPod:       p.Name,
		kubeevent.LabelContainer: container,
		kubeevent.LabelNode:      p.Spec.NodeName,
		kubeevent.LabelOwnerKind: owner.Kind,
		kubeevent.LabelOwnerName: owner.Name,
	}
	for k, v := range facts {
		f[k] = v
	}
	return event.Event{
		Kind:        kind,
		Source:      kubeevent.Source,
		Status:      event.StatusFiring,
		Labels:      eventLabels(p.Labels, f),
		Annotations: eventAnnotations(p.Annotations),
		Subject:     event.Subject{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, Container: container, Node: p.Spec.NodeName},
		Raw:         rawJSON(p, podGVK),
	}, owner
}

func workloadSubject(ns string, o Owner) string { return ns + "/" + o.Kind + "/" + o.Name }

func (d *Detector) onPod(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	for _, cs := range allStatuses(p) {
		d.crashLoop(p, &cs)
		d.oomKilled(p, &cs)
	}
	d.evicted(p)
	if d.wants(event.KindImagePullBackoff) && (hasPullFailure(p) || d.hasEpisodes(podKey(p))) {
		d.enqueue(prefixPull + podKey(p))
	}
}

func hasPullFailure(p *corev1.Pod) bool {
	for _, cs := range allStatuses(p) {
		if pullFailing(&cs) {
			return true
		}
	}
	return false
}

func (d *Detector) onPodDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if d.hasEpisodes(podKey(p)) {
		d.enqueue(prefixPull + podKey(p)) // the check finds the pod gone and ends its episodes
	}
}

// crashLoop: a container waiting after it restarted. One occurrence per
// container and restart count; on_pod_crash_loop filters reason and count.
func (d *Detector) crashLoop(p *corev1.Pod, cs *corev1.ContainerStatus) {
	w := cs.State.Waiting
	last := cs.LastTerminationState.Terminated
	if w == nil || (cs.RestartCount < 1 && last == nil) || !d.wants(event.KindPodCrashLoop) {
		return
	}
	id := occurrenceID(event.KindPodCrashLoop, string(p.UID), cs.Name, strconv.Itoa(int(cs.RestartCount)), w.Reason)
	if d.seenLocally(id) {
		return // the usual case: another status write of a known state
	}
	facts := map[string]string{
		kubeevent.LabelReason:       w.Reason,
		kubeevent.LabelRestartCount: strconv.Itoa(int(cs.RestartCount)),
	}
	detail := fmt.Sprintf("restarted %d times", cs.RestartCount)
	if cs.RestartCount == 1 {
		detail = "restarted once"
	}
	var startsAt time.Time
	if last != nil {
		facts[kubeevent.LabelExitCode] = strconv.Itoa(int(last.ExitCode))
		detail += fmt.Sprintf(", last exit code %d", last.ExitCode)
		if last.Reason != "" && last.Reason != "Error" {
			detail += " (" + last.Reason + ")"
		}
		startsAt = last.FinishedAt.Time
	}
	ev, owner := d.podBase(p, event.KindPodCrashLoop, cs.Name, facts)
	what := "is crash looping"
	if w.Reason != reasonCrashLoopBackOff {
		what = "is waiting (" + w.Reason + ")"
	}
	ev.Title = fmt.Sprintf("Pod %s/%s container %s %s (%s)", p.Namespace, p.Name, cs.Name, what, detail)
	ev.Description = w.Message
	if last != nil && last.Message != "" {
		ev.Description = strings.TrimSpace(ev.Description + "\n" + "Last termination: " + last.Message)
	}
	ev.Severity = event.SeverityHigh
	ev.StartsAt = startsAt.UTC()
	ev.ID = id
	ev.Fingerprint = ev.ID
	d.offer(candidate{ev: ev, subject: workloadSubject(p.Namespace, owner)})
}

// oomKilled: a container whose current or last termination is OOMKilled.
// One occurrence per container and kill (its finish time), reported both as
// pod_oom_killed and container_oom_killed.
func (d *Detector) oomKilled(p *corev1.Pod, cs *corev1.ContainerStatus) {
	if !d.wants(event.KindPodOOMKilled, event.KindContainerOOMKilled) {
		return
	}
	for _, term := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
		if term == nil || term.Reason != reasonOOMKilled {
			continue
		}
		kill := term.FinishedAt.UTC().Format(time.RFC3339)
		if term.FinishedAt.IsZero() {
			kill = term.ContainerID
		}
		limit := memoryLimit(p, cs.Name)
		facts := map[string]string{
			kubeevent.LabelReason:       reasonOOMKilled,
			kubeevent.LabelExitCode:     strconv.Itoa(int(term.ExitCode)),
			kubeevent.LabelRestartCount: strconv.Itoa(int(cs.RestartCount)),
			"memory_limit":              limit,
		}
		detail := fmt.Sprintf("exit code %d", term.ExitCode)
		if limit != "" {
			detail = "memory limit " + limit + ", " + detail
		}
		for _, kind := range []event.Kind{event.KindPodOOMKilled, event.KindContainerOOMKilled} {
			id := occurrenceID(kind, string(p.UID), cs.Name, kill)
			if !d.wants(kind) || d.seenLocally(id) {
				continue
			}
			ev, owner := d.podBase(p, kind, cs.Name, facts)
			ev.Title = fmt.Sprintf("Pod %s/%s container %s was OOMKilled (%s)", p.Namespace, p.Name, cs.Name, detail)
			ev.Description = term.Message
			ev.Severity = event.SeverityHigh
			ev.StartsAt = term.FinishedAt.UTC()
			subject := workloadSubject(p.Namespace, owner)
			if kind == event.KindContainerOOMKilled {
				ev.Subject.Kind = "Container"
				subject += "/" + cs.Name
			}
			ev.ID = id
			ev.Fingerprint = ev.ID
			fact := term.FinishedAt.Time
			if fact.IsZero() {
				fact = d.clock.Now()
			}
			d.offer(candidate{ev: ev, subject: subject, factTime: fact})
		}
		return // the current termination wins over the last one
	}
}

func memoryLimit(p *corev1.Pod, container string) string {
	for _, list := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range list {
			if c.Name == container {
				if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
					return q.String()
				}
			}
		}
	}
	return ""
}

// evicted: phase Failed with reason Evicted, once per pod.
func (d *Detector) evicted(p *corev1.Pod) {
	id := occurrenceID(event.KindPodEvicted, string(p.UID))
	if p.Status.Phase != corev1.PodFailed || p.Status.Reason != reasonEvicted || !d.wants(event.KindPodEvicted) || d.seenLocally(id) {
		return
	}
	ev, owner := d.podBase(p, event.KindPodEvicted, "", map[string]string{kubeevent.LabelReason: reasonEvicted})
	ev.Title = fmt.Sprintf("Pod %s/%s was evicted", p.Namespace, p.Name)
	if p.Spec.NodeName != "" {
		ev.Title += " from node " + p.Spec.NodeName
	}
	ev.Description = p.Status.Message
	ev.Severity = event.SeverityWarning
	var when time.Time
	for _, c := range p.Status.Conditions {
		when = latest(when, c.LastTransitionTime.Time)
	}
	for _, cs := range allStatuses(p) {
		if t := cs.State.Terminated; t != nil {
			when = latest(when, t.FinishedAt.Time)
		}
	}
	if when.IsZero() && p.Status.StartTime != nil {
		when = p.Status.StartTime.Time
	}
	if when.IsZero() {
		when = p.CreationTimestamp.Time
	}
	ev.StartsAt = when.UTC()
	ev.ID = id
	ev.Fingerprint = ev.ID
	d.offer(candidate{ev: ev, subject: workloadSubject(p.Namespace, owner), factTime: when})
}

// --- image pulls: fire_delay ------------------------------------------------

func (d *Detector) hasEpisodes(pod string) bool {
	d.episodeMu.Lock()
	defer d.episodeMu.Unlock()
	return len(d.episodes[pod]) > 0
}

// episodeKey names one spell of failing pulls: the pod, the container, the
// image, and the restart count (a container that ran and fails to pull
// again later starts a new spell).
func episodeKey(p *corev1.Pod, cs *corev1.ContainerStatus) string {
	return "pull." + keyHash(string(p.UID)+"/"+cs.Name+"/"+cs.Image+"/"+strconv.Itoa(int(cs.RestartCount)))
}

// checkImagePull runs on the worker for a pod with failing pulls (or that
// had some): it starts each container's spell (first seen, shared through
// State), fires the triggers whose fire_delay has passed, and re-checks at
// the next delay. A container that recovered, or a pod that is gone, ends
// its spell quietly.
func (d *Detector) checkImagePull(key string) error {
	ns, name, _ := strings.Cut(key, "/")
	p, _ := d.cached(ns, "pods", name).(*corev1.Pod)
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	active := map[string]bool{}
	now := d.clock.Now()
	var next time.Time
	if p != nil && d.wants(event.KindImagePullBackoff) {
		for _, cs := range allStatuses(p) {
			if !pullFailing(&cs) {
				continue
			}
			ek := episodeKey(p, &cs)
			active[ek] = true
			since, err := d.state.FirstSeen(ctx, ek, now)
			if err != nil {
				return fmt.Errorf("image pull spell of %s: %w", key, err)
			}
			for _, delay := range d.interest.Load().Delays(event.KindImagePullBackoff) {
				due := since.Add(delay)
				if now.Before(due) {
					if next.IsZero() || due.Before(next) {
						next = due
					}
					continue
				}
				d.offerImagePull(p, &cs, since, delay)
			}
		}
	}
	// Forget the spells that ended.
	d.episodeMu.Lock()
	known := d.episodes[key]
	var ended []string
	for ek := range known {
		if !active[ek] {
			ended = append(ended, ek)
		}
	}
	if len(active) == 0 {
		delete(d.episodes, key)
	} else {
		d.episodes[key] = active
	}
	d.episodeMu.Unlock()
	for _, ek := range ended {
		if err := d.state.Forget(ctx, ek); err != nil {
			d.log.Debug("cannot forget an image pull spell", "err", err)
		}
	}
	if next.IsZero() {
		d.disarm(prefixPull + key)
	} else {
		d.after(prefixPull+key, next)
	}
	return nil
}

func (d *Detector) offerImagePull(p *corev1.Pod, cs *corev1.ContainerStatus, since time.Time, delay time.Duration) {
	w := cs.State.Waiting
	facts := map[string]string{
		kubeevent.LabelReason:    w.Reason,
		kubeevent.LabelImage:     cs.Image,
		kubeevent.LabelFireDelay: delay.String(),
	}
	ev, owner := d.podBase(p, event.KindImagePullBackoff, cs.Name, facts)
	ev.Title = fmt.Sprintf("Pod %s/%s container %s cannot pull image %s (%s for over %s)", p.Namespace, p.Name, cs.Name, cs.Image, w.Reason, delay)
	ev.Description = w.Message
	ev.Severity = event.SeverityWarning
	ev.StartsAt = since.UTC()
	ev.ID = occurrenceID(event.KindImagePullBackoff, string(p.UID), cs.Name, cs.Image, strconv.Itoa(int(cs.RestartCount)),
		since.UTC().Format(time.RFC3339Nano), delay.String())
	ev.Fingerprint = ev.ID
	d.offer(candidate{ev: ev, subject: workloadSubject(p.Namespace, owner)})
}
