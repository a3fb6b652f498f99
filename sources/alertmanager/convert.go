package alertmanager

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/medichq/medic/event"
)

// DefaultSource is the event source of alerts received through the webhook.
// It is part of every event ID, so replicas must agree on it.
const DefaultSource = "alertmanager"

// ToEvents converts every alert of msg into one event. Alerts without a
// status take the message's status, as Decode does.
func ToEvents(msg *Message, source string, receivedAt time.Time) []event.Event {
	if msg == nil || msg.Data == nil {
		return nil
	}
	events := make([]event.Event, 0, len(msg.Alerts))
	for _, a := range msg.Alerts {
		if a.Status == "" {
			a.Status = msg.Status
		}
		events = append(events, fromAlert(a, msg.ExternalURL, source, receivedAt, false))
	}
	return events
}

// Fingerprint computes an alert's fingerprint from its labels the way
// Alertmanager does, so an alert built by medic (or sent by a tool that
// leaves the fingerprint out) gets the ID the real one would get.
func Fingerprint(labels template.KV) string {
	// This is model.LabelsToSignature (LabelSet.Fingerprint's algorithm:
	// FNV-1a over the sorted names and their values, each followed by
	// model.SeparatorByte) with the names sorted on the stack, and the hex
	// written without fmt: it ran for every alert and was a twentieth of
	// the intake's CPU. TestFingerprintMatchesLabelSet holds it to the
	// original.
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	var stack [16]string
	names := stack[:0]
	for name := range labels {
		names = append(names, name)
	}
	slices.Sort(names)
	sum := uint64(offset64)
	for _, name := range names {
		for _, s := range [2]string{name, labels[name]} {
			for i := 0; i < len(s); i++ {
				sum ^= uint64(s[i])
				sum *= prime64
			}
			sum ^= uint64(model.SeparatorByte)
			sum *= prime64
		}
	}
	const digits = "0123456789abcdef"
	var out [16]byte
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = digits[sum&0xf]
		sum >>= 4
	}
	return string(out[:])
}

// EventFromAlert converts one alert. The manual trigger uses it too, so an
// alert typed on the command line and one sent by Alertmanager look the same
// to playbooks.
func EventFromAlert(a template.Alert, externalURL, source string, receivedAt time.Time) event.Event {
	return fromAlert(a, externalURL, source, receivedAt, true)
}

// fromAlert converts one alert; with clone false the event takes the
// alert's label and annotation maps instead of copies (ToEvents, whose
// message is decoded for this one use, so its events may share them).
func fromAlert(a template.Alert, externalURL, source string, receivedAt time.Time, clone bool) event.Event {
	// The ID is keyed on the fingerprint of the labels as received, not on
	// the payload's fingerprint field: Alertmanager computes that field the
	// same way, and a hand-made payload that repeats one fingerprint for
	// different alerts must not lose all but the first.
	labelsFP := Fingerprint(a.Labels)
	if a.Fingerprint == "" {
		a.Fingerprint = labelsFP
	}
	status := event.Status(a.Status)
	return event.Event{
		ID:           event.NewID(source, labelsFP, status, a.StartsAt),
		Kind:         event.KindPrometheusAlert,
		Source:       source,
		Status:       status,
		Severity:     event.ParseSeverity(a.Labels["severity"]),
		Title:        title(a),
		Description:  firstNonEmpty(a.Annotations["description"], a.Annotations["message"]),
		Labels:       kv(a.Labels, clone),
		Annotations:  kv(a.Annotations, clone),
		Subject:      SubjectFromLabels(a.Labels),
		StartsAt:     a.StartsAt,
		EndsAt:       a.EndsAt,
		Fingerprint:  a.Fingerprint,
		GeneratorURL: a.GeneratorURL,
		ExternalURL:  externalURL,
		ReceivedAt:   receivedAt,
		// No Raw: every field of the alert is in the event already, and
		// carrying it twice through every message costs throughput.
	}
}

func title(a template.Alert) string {
	if t := firstNonEmpty(a.Annotations["summary"], a.Labels["alertname"]); t != "" {
		return t
	}
	// Sinks need something to show; the label set is what identifies it.
	ls := make(model.LabelSet, len(a.Labels))
	for k, v := range a.Labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.String()
}

// subjectLabels maps the labels kube-state-metrics and the kubernetes-mixin
// put on alerts to the kind of object they name, most specific first.
// pod_name is what cAdvisor called the label before Kubernetes 1.16; such
// alerts are still around in old rule sets.
var subjectLabels = []struct{ label, kind string }{
	{"pod", "Pod"},
	{"pod_name", "Pod"},
	{"deployment", "Deployment"},
	{"statefulset", "StatefulSet"},
	{"daemonset", "DaemonSet"},
	{"job_name", "Job"},
	{"node", "Node"},
}

// SubjectFromLabels finds the Kubernetes object an alert is about. The
// instance label names a scrape target, not an object, so it only gives the
// name when nothing better is there, and no kind.
//
// Alerts on kube-state-metrics series carry two sets of pod, namespace and
// container labels: the object the series describes, and the exporter's
// own, which Prometheus attaches as target labels. Which one wins the plain
// name depends on the scrape's honor_labels:
//   - false: the series' own labels are renamed exported_pod,
//     exported_namespace, exported_container, and the plain ones name the
//     exporter. Any exported_ label says so, and the exported_ ones are the
//     subject (a plain one without its exported_ twin is the exporter's).
//   - true (kube-prometheus-stack, Robusta's chart): the series' labels win,
//     and the exporter's are added only where the series has none, so a
//     Deployment's series carries pod=<the exporter's pod> and
//     container=kube-state-metrics. Like Robusta, a pod whose name contains
//     kube-state-metrics is not the subject; nor is the pod of an alert
//     scraped from kube-state-metrics whose container is the exporter's.
//
// For kube-state-metrics' series instance is the exporter's address, never
// the subject (Robusta's rule for nodes).
func SubjectFromLabels(labels template.KV) event.Subject {
	pod, namespace, container := labels["pod"], labels["namespace"], firstNonEmpty(labels["container"], labels["container_name"])
	ksm := isKubeStateMetrics(labels["job"]) || isKubeStateMetrics(labels["service"])
	exporters := false // pod, container (and, for a cluster-scoped series, namespace) are the exporter's
	switch ep, en, ec := labels["exported_pod"], labels["exported_namespace"], labels["exported_container"]; {
	case ep != "" || en != "" || ec != "":
		pod, namespace, container = ep, en, ec
	case isKubeStateMetrics(pod) || ksm && pod != "" && container == "kube-state-metrics":
		pod, container, exporters = "", "", true
	}
	s := event.Subject{
		Namespace: namespace,
		Container: container,
		Node:      labels["node"],
	}
	for _, sl := range subjectLabels {
		v := labels[sl.label]
		if sl.label == "pod" {
			v = pod
		}
		if v != "" {
			s.Kind, s.Name = sl.kind, v
			break
		}
	}
	if exporters && (s.Kind == "" || s.Kind == "Node") {
		// A cluster-scoped series has no namespace of its own: the one
		// there is the exporter's target label.
		s.Namespace = ""
	}
	if s.Kind == "" && !ksm {
		s.Name = labels["instance"]
	}
	return s
}

// isKubeStateMetrics says whether a job, service or pod name is the
// exporter's ("kube-state-metrics", "prometheus-kube-state-metrics",
// "robusta-kube-state-metrics-6d8f…").
func isKubeStateMetrics(name string) bool {
	return strings.Contains(name, "kube-state-metrics")
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func kv(m template.KV, clone bool) map[string]string {
	switch {
	case len(m) == 0:
		return nil
	case clone:
		return maps.Clone(map[string]string(m))
	}
	return m
}
