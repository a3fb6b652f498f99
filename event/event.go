// Package event defines the shapes every part of medic speaks: the Event that
// a trigger publishes and the Finding that playbooks build and sinks deliver.
// It depends on nothing else in medic so that triggers, actions and sinks can
// all import it without importing each other.
package event

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// Kind names what happened. Playbook triggers select events by kind.
type Kind string

// Kinds produced by medic's own triggers.
const (
	KindPrometheusAlert        Kind = "prometheus_alert"
	KindPodCrashLoop           Kind = "pod_crash_loop"
	KindPodOOMKilled           Kind = "pod_oom_killed"
	KindContainerOOMKilled     Kind = "container_oom_killed"
	KindImagePullBackoff       Kind = "image_pull_backoff"
	KindPodEvicted             Kind = "pod_evicted"
	KindJobFailure             Kind = "job_failure"
	KindNodeNotReady           Kind = "node_not_ready"
	KindKubernetesWarningEvent Kind = "kubernetes_warning_event"
	KindKubernetesResource     Kind = "kubernetes_resource"
	KindManual                 Kind = "manual"
	KindSchedule               Kind = "schedule"
)

// Status is the lifecycle state of the condition an event reports.
type Status string

// Statuses follow Alertmanager's vocabulary so alerts map one to one.
const (
	StatusFiring   Status = "firing"
	StatusResolved Status = "resolved"
)

// Severity is normalised from the alert's severity label or the detector.
type Severity string

// Severities, ordered from most to least urgent.
const (
	SeverityCritical Severity = "critical"
	SeverityHigh     Severity = "high"
	SeverityWarning  Severity = "warning"
	SeverityInfo     Severity = "info"
	SeverityNone     Severity = "none"
)

// ParseSeverity maps the severity words found in the wild (Prometheus rules,
// PagerDuty, Robusta) onto medic's scale. Unknown words become SeverityInfo
// so an odd label never drops an alert.
func ParseSeverity(s string) Severity {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical", "crit", "fatal", "emergency", "page", "p1":
		return SeverityCritical
	case "high", "error", "major", "severe", "p2":
		return SeverityHigh
	case "warning", "warn", "medium", "minor", "p3":
		return SeverityWarning
	case "none":
		return SeverityNone
	default:
		return SeverityInfo
	}
}

// Subject is the Kubernetes object (or host) an event is about.
type Subject struct {
	Kind      string `json:"kind,omitempty"` // Pod, Deployment, Node, Job, …
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	Container string `json:"container,omitempty"`
	Node      string `json:"node,omitempty"`
}

// IsZero reports whether nothing is known about the subject.
func (s Subject) IsZero() bool { return s == Subject{} }

// String renders the subject as kind/namespace/name, leaving out what is unknown.
func (s Subject) String() string {
	parts := make([]string, 0, 3)
	for _, p := range []string{strings.ToLower(s.Kind), s.Namespace, s.Name} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "/")
}

// Event is one thing that happened, normalised from its source.
type Event struct {
	ID           string            `json:"id"`
	Kind         Kind              `json:"kind"`
	Source       string            `json:"source"`
	Status       Status            `json:"status"`
	Severity     Severity          `json:"severity"`
	Title        string            `json:"title"`
	Description  string            `json:"description,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Subject      Subject           `json:"subject"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	Fingerprint  string            `json:"fingerprint,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
	// ExternalURL is the URL of the Alertmanager that sent the alert; sinks
	// build silence links from it.
	ExternalURL string    `json:"externalURL,omitempty"`
	ReceivedAt  time.Time `json:"receivedAt"`
	// Raw keeps the source's own payload for actions that need more than the
	// normalised fields (the alert object, the Kubernetes object).
	Raw json.RawMessage `json:"raw,omitempty"`
	// Events published by medic before every rate limit moved to the
	// engine may carry "suppressedTriggers" (the Kubernetes detector's
	// refusals); decoding ignores it, and the engine decides afresh.
}

// NewID derives the event ID from what identifies one occurrence of one
// condition. Retried webhooks and replicas watching the same cluster compute
// the same ID, which JetStream then deduplicates (Nats-Msg-Id).
func NewID(source, fingerprint string, status Status, startsAt time.Time) string {
	h := sha256.New()
	for _, part := range []string{source, fingerprint, string(status), startsAt.UTC().Format(time.RFC3339Nano)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Label returns the label's value or "" when it is absent.
func (e *Event) Label(name string) string { return e.Labels[name] }

// Annotation returns the annotation's value or "" when it is absent.
func (e *Event) Annotation(name string) string { return e.Annotations[name] }
