// Package kubernetes holds the playbook triggers over the events of the
// Kubernetes source (sources/kubernetes): on_pod_crash_loop,
// on_pod_oom_killed, …, on_kubernetes_resource, the change triggers of
// kinds.go and the Helm release triggers. They are pure functions of an
// event, in the vocabulary of event/kubeevent; what needs the cluster
// (informers, delays, "already reported") is the source's, which learns
// each trigger's kind, filters, delay and resources through its Want
// interface. Their rate limits are triggers.Limited, applied by the engine
// like every source's, per the subject the source wrote on the event
// (kubeevent.LabelRateLimitSubject: the owning workload, the node, …).
package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
	"github.com/medichq/medic/scope"
	"github.com/medichq/medic/triggers"
)

// Playbook trigger names.
const (
	TriggerPodCrashLoop       = "on_pod_crash_loop"
	TriggerPodOOMKilled       = "on_pod_oom_killed"
	TriggerContainerOOMKilled = "on_container_oom_killed"
	TriggerImagePullBackoff   = "on_image_pull_backoff"
	TriggerPodEvicted         = "on_pod_evicted"
	TriggerJobFailure         = "on_job_failure"
	TriggerNodeNotReady       = "on_node_not_ready"
	TriggerWarningEvent       = "on_kubernetes_warning_event"
	TriggerResource           = "on_kubernetes_resource"
)

// Common are the filters every Kubernetes trigger accepts.
type Common struct {
	// NamePrefix tests the subject's name (pod, job, node, the involved
	// object of a warning event, the resource's name).
	NamePrefix string `yaml:"name_prefix"`
	// NamespacePrefix tests the subject's namespace; cluster-scoped
	// subjects (nodes) never match a non-empty prefix.
	NamespacePrefix string `yaml:"namespace_prefix"`
	// LabelsSelector is a Kubernetes label selector ("app=shop,tier!=db",
	// "env in (prod,stage)", "!canary") over the event's labels: the
	// object's own labels plus the facts above.
	LabelsSelector string `yaml:"labels_selector"`
	// Scope adds include/exclude rules (see the scope package).
	Scope scope.Scope `yaml:"scope"`
}

func (c *Common) validate() error {
	if _, err := labels.Parse(c.LabelsSelector); err != nil {
		return fmt.Errorf("labels_selector: %w", err)
	}
	return nil
}

// NameNamespace excludes a subject: Name is a prefix of its name, Namespace
// its exact namespace; an empty field matches everything.
type NameNamespace struct {
	Name      string `yaml:"name"`
	Namespace string `yaml:"namespace"`
}

// CrashLoopParams are on_pod_crash_loop's parameters.
type CrashLoopParams struct {
	Common `yaml:",inline"`
	// RestartReason must be contained in the container's waiting reason
	// (default CrashLoopBackOff); empty accepts any reason.
	RestartReason string `yaml:"restart_reason"`
	// RestartCount is the least number of restarts (default 2).
	RestartCount int `yaml:"restart_count"`
	// RateLimit fires at most once per owning workload (Deployment,
	// StatefulSet, DaemonSet, Job, CronJob, or the bare pod) within it
	// (default 4h; 0 turns it off).
	RateLimit Duration `yaml:"rate_limit"`
}

// OOMParams are on_pod_oom_killed's and on_container_oom_killed's parameters.
type OOMParams struct {
	Common  `yaml:",inline"`
	Exclude []NameNamespace `yaml:"exclude"`
	// RateLimit per owning workload (default 1h; 0 fires for every kill).
	RateLimit Duration `yaml:"rate_limit"`
}

// ImagePullParams are on_image_pull_backoff's parameters.
type ImagePullParams struct {
	Common `yaml:",inline"`
	// FireDelay is how long a container must keep failing to pull before
	// the trigger fires (default 120s), so a pull that recovers stays quiet.
	FireDelay Duration `yaml:"fire_delay"`
	// RateLimit per owning workload (default 4h).
	RateLimit Duration `yaml:"rate_limit"`
}

// RateLimitParams are the parameters of triggers with only the common
// filters and a rate limit.
type RateLimitParams struct {
	Common    `yaml:",inline"`
	RateLimit Duration `yaml:"rate_limit"`
}

// NodeNotReadyParams are on_node_not_ready's parameters.
type NodeNotReadyParams struct {
	Common `yaml:",inline"`
	// Duration is how long the node must stay not ready (default 1m).
	Duration Duration `yaml:"duration"`
	// RateLimit per node (default 0: once per not-ready spell).
	RateLimit Duration `yaml:"rate_limit"`
}

// WarningEventParams are on_kubernetes_warning_event's parameters.
type WarningEventParams struct {
	Common `yaml:",inline"`
	// Include, when set, requires one of its substrings in the event's
	// reason or message; Exclude drops events with any of its substrings.
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
	// RateLimit per involved object and reason (default 1h).
	RateLimit Duration `yaml:"rate_limit"`
}

// ResourceParams are on_kubernetes_resource's parameters.
type ResourceParams struct {
	Common `yaml:",inline"`
	// Resource is group/version/resource: "apps/v1/deployments",
	// "v1/configmaps" (the core group), "example.com/v1/widgets" (a CRD).
	Resource string `yaml:"resource"`
	// Operations among create, update, delete (default: all three).
	Operations []string `yaml:"operations"`
	// Updates that change only status, or only metadata (labels,
	// annotations, finalizers…), are ignored unless these are set.
	// resourceVersion, managedFields and generation never count.
	IncludeStatusChanges   bool `yaml:"include_status_changes"`
	IncludeMetadataChanges bool `yaml:"include_metadata_changes"`
	// RateLimit per object (default 0: every change).
	RateLimit Duration `yaml:"rate_limit"`
}

func registerPods(r *triggers.Registry) {
	triggers.Add(r, TriggerPodCrashLoop,
		"Runs when a pod's container keeps restarting (waiting in CrashLoopBackOff after restart_count restarts); rate-limited per owning workload.",
		func() *CrashLoopParams {
			return &CrashLoopParams{RestartReason: "CrashLoopBackOff", RestartCount: 2, RateLimit: Duration(4 * time.Hour)}
		},
		func(p *CrashLoopParams) (triggers.Trigger, error) {
			if p.RestartCount < 0 {
				return nil, errors.New("restart_count: must not be negative")
			}
			return build(TriggerPodCrashLoop, event.KindPodCrashLoop, p, p.Common, p.RateLimit.D(), 0, func(ev *event.Event) bool {
				if p.RestartReason != "" && !strings.Contains(ev.Labels[kubeevent.LabelReason], p.RestartReason) {
					return false
				}
				n, err := strconv.Atoi(ev.Labels[kubeevent.LabelRestartCount])
				return err == nil && n >= p.RestartCount
			})
		})
	oomDoc := "Runs when a container of a pod is killed for running out of memory (OOMKilled)"
	triggers.Add(r, TriggerPodOOMKilled, oomDoc+"; one event per pod and kill, rate-limited per owning workload.",
		func() *OOMParams { return &OOMParams{RateLimit: Duration(time.Hour)} },
		func(p *OOMParams) (triggers.Trigger, error) {
			return build(TriggerPodOOMKilled, event.KindPodOOMKilled, p, p.Common, p.RateLimit.D(), 0, excluded(p.Exclude))
		})
	triggers.Add(r, TriggerContainerOOMKilled, oomDoc+"; the event's subject is the container.",
		func() *OOMParams { return &OOMParams{RateLimit: Duration(time.Hour)} },
		func(p *OOMParams) (triggers.Trigger, error) {
			return build(TriggerContainerOOMKilled, event.KindContainerOOMKilled, p, p.Common, p.RateLimit.D(), 0, excluded(p.Exclude))
		})
	triggers.Add(r, TriggerImagePullBackoff,
		"Runs when a container keeps failing to pull its image (ImagePullBackOff, ErrImagePull) for fire_delay; a pull that recovers sooner stays quiet.",
		func() *ImagePullParams {
			return &ImagePullParams{FireDelay: Duration(120 * time.Second), RateLimit: Duration(4 * time.Hour)}
		},
		func(p *ImagePullParams) (triggers.Trigger, error) {
			if p.FireDelay <= 0 {
				return nil, errors.New("fire_delay: must be positive")
			}
			want := p.FireDelay.String()
			return build(TriggerImagePullBackoff, event.KindImagePullBackoff, p, p.Common, p.RateLimit.D(), p.FireDelay.D(), func(ev *event.Event) bool {
				return ev.Labels[kubeevent.LabelFireDelay] == want
			})
		})
	triggers.Add(r, TriggerPodEvicted,
		"Runs when a pod is evicted (phase Failed, reason Evicted); rate-limited per owning workload.",
		func() *RateLimitParams { return &RateLimitParams{RateLimit: Duration(time.Hour)} },
		func(p *RateLimitParams) (triggers.Trigger, error) {
			return build(TriggerPodEvicted, event.KindPodEvicted, p, p.Common, p.RateLimit.D(), 0, nil)
		})
	triggers.Add(r, TriggerJobFailure,
		"Runs when a Job turns Failed (its Failed condition becomes true).",
		func() *RateLimitParams { return &RateLimitParams{} },
		func(p *RateLimitParams) (triggers.Trigger, error) {
			return build(TriggerJobFailure, event.KindJobFailure, p, p.Common, p.RateLimit.D(), 0, nil)
		})
	triggers.Add(r, TriggerNodeNotReady,
		"Runs when a node's Ready condition has been False or Unknown for duration.",
		func() *NodeNotReadyParams { return &NodeNotReadyParams{Duration: Duration(time.Minute)} },
		func(p *NodeNotReadyParams) (triggers.Trigger, error) {
			if p.Duration <= 0 {
				return nil, errors.New("duration: must be positive")
			}
			want := p.Duration.String()
			return build(TriggerNodeNotReady, event.KindNodeNotReady, p, p.Common, p.RateLimit.D(), p.Duration.D(), func(ev *event.Event) bool {
				return ev.Labels[kubeevent.LabelNotReadyFor] == want
			})
		})
	triggers.Add(r, TriggerWarningEvent,
		"Runs for Kubernetes events of type Warning (BackOff, FailedScheduling, FailedMount…); include/exclude are substrings of the reason or message; rate-limited per involved object and reason.",
		func() *WarningEventParams { return &WarningEventParams{RateLimit: Duration(time.Hour)} },
		func(p *WarningEventParams) (triggers.Trigger, error) {
			return build(TriggerWarningEvent, event.KindKubernetesWarningEvent, p, p.Common, p.RateLimit.D(), 0, func(ev *event.Event) bool {
				text := ev.Labels[kubeevent.LabelReason] + "\n" + ev.Annotations[kubeevent.AnnotationMessage]
				if len(p.Include) > 0 && !slices.ContainsFunc(p.Include, func(s string) bool { return strings.Contains(text, s) }) {
					return false
				}
				return !slices.ContainsFunc(p.Exclude, func(s string) bool { return strings.Contains(text, s) })
			})
		})
	triggers.Add(r, TriggerResource,
		"Runs when any resource (CRDs included) is created, updated or deleted; updates that change only status or metadata are ignored by default.",
		func() *ResourceParams { return &ResourceParams{} },
		buildResourceTrigger)
}

func excluded(list []NameNamespace) func(*event.Event) bool {
	if len(list) == 0 {
		return nil
	}
	return func(ev *event.Event) bool {
		for _, x := range list {
			if (x.Namespace == "" || x.Namespace == ev.Subject.Namespace) &&
				(x.Name == "" || strings.HasPrefix(ev.Subject.Name, x.Name)) {
				return false
			}
		}
		return true
	}
}

func buildResourceTrigger(p *ResourceParams) (triggers.Trigger, error) {
	gvr, err := kubeevent.ParseGVR(p.Resource)
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	ops, err := parseOps(p.Operations)
	if err != nil {
		return nil, err
	}
	res := kubeevent.FormatGVR(gvr)
	t, err := build(TriggerResource, event.KindKubernetesResource, p, p.Common, p.RateLimit.D(), 0, func(ev *event.Event) bool {
		if ev.Labels[kubeevent.LabelResource] != res || !ops[ev.Labels[kubeevent.LabelOperation]] {
			return false
		}
		return ev.Labels[kubeevent.LabelOperation] != kubeevent.OpUpdate ||
			updateCounts(ev.Labels[kubeevent.LabelChanged], p.IncludeStatusChanges, p.IncludeMetadataChanges)
	})
	if err != nil {
		return nil, err
	}
	t.gvrs = []schema.GroupVersionResource{gvr}
	return t, nil
}

// Trigger is a built Kubernetes playbook trigger. Matching is pure, and so
// is its rate limit's key: the trigger is a triggers.Limited, limited by the
// engine per the subject the detector found in its informer caches and
// wrote on the event (kubeevent.LabelRateLimitSubject).
type Trigger struct {
	name      string
	kind      event.Kind
	id        string
	common    Common
	selector  labels.Selector
	rateLimit time.Duration
	delay     time.Duration
	extra     func(*event.Event) bool
	gvrs      []schema.GroupVersionResource // the resources a change trigger watches
}

func build(name string, kind event.Kind, params any, c Common, rateLimit, delay time.Duration, extra func(*event.Event) bool) (*Trigger, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	sel, err := labels.Parse(c.LabelsSelector)
	if err != nil {
		return nil, fmt.Errorf("labels_selector: %w", err)
	}
	// The ID names the trigger's rate-limit state (triggers.ParamsID).
	id, err := triggers.ParamsID(name, params)
	if err != nil {
		return nil, err
	}
	return &Trigger{
		name: name, kind: kind, id: id,
		common: c, selector: sel, rateLimit: rateLimit, delay: delay, extra: extra,
	}, nil
}

// Name is the trigger's playbook name (on_pod_crash_loop, …).
func (t *Trigger) Name() string { return t.name }

// Kind is the event kind the trigger matches.
func (t *Trigger) Kind() event.Kind { return t.kind }

// ID identifies the trigger's parameters; it keys its rate-limit state.
func (t *Trigger) ID() string { return t.id }

var _ triggers.Limited = (*Trigger)(nil)

// RateLimit implements triggers.Limited: the trigger's window per subject;
// 0 means none.
func (t *Trigger) RateLimit() time.Duration { return t.rateLimit }

// LimitKey implements triggers.Limited: the trigger and what its limit
// counts per, the event's kubeevent.LabelRateLimitSubject (the pods of one
// Deployment share it). An event without the label (published by a medic
// from before the engine applied these limits) is limited per its subject.
func (t *Trigger) LimitKey(ev *event.Event) string {
	subject := ev.Labels[kubeevent.LabelRateLimitSubject]
	if subject == "" {
		subject = ev.Subject.String()
	}
	return limitKey(t.id, subject)
}

// limitKey is "<id>.<hash of subject>": the key the detector claimed its
// windows under (in the same bucket) when it applied these limits itself,
// so a window claimed before an upgrade still holds after it. Hence not
// triggers.LimitKeyOf, whose hash ends every part with a NUL.
func limitKey(id, subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return id + "." + hex.EncodeToString(sum[:12])
}

// Delay is fire_delay (on_image_pull_backoff) or duration
// (on_node_not_ready): how long a state must last before it fires.
func (t *Trigger) Delay() time.Duration { return t.delay }

// Resource is the resource an on_kubernetes_resource trigger watches (the
// first, for change triggers that watch several).
func (t *Trigger) Resource() (schema.GroupVersionResource, bool) {
	if len(t.gvrs) == 0 {
		return schema.GroupVersionResource{}, false
	}
	return t.gvrs[0], true
}

// Resources are the resources a change trigger watches through the dynamic
// client (on_kubernetes_resource, on_deployment_update, …).
func (t *Trigger) Resources() []schema.GroupVersionResource { return t.gvrs }

// Kinds implements triggers.Trigger.
func (t *Trigger) Kinds() []event.Kind { return []event.Kind{t.kind} }

// Match implements triggers.Trigger: the filters hold. Whether the rate
// limit lets the trigger fire is the engine's (triggers.Limited).
func (t *Trigger) Match(ev *event.Event) bool { return t.Filter(ev) }

// Filter reports whether ev passes the trigger's filters; the detector
// publishes an occurrence when one of its interest's triggers' does.
func (t *Trigger) Filter(ev *event.Event) bool {
	if ev == nil || ev.Kind != t.kind {
		return false
	}
	c := &t.common
	if !hasPrefix(ev.Subject.Name, c.NamePrefix) || !hasPrefix(ev.Subject.Namespace, c.NamespacePrefix) {
		return false
	}
	if !t.selector.Empty() && !t.selector.Matches(labels.Set(ev.Labels)) {
		return false
	}
	if !c.Scope.Match(ev, ev.Severity) {
		return false
	}
	return t.extra == nil || t.extra(ev)
}

func hasPrefix(v, prefix string) bool {
	return prefix == "" || (v != "" && strings.HasPrefix(v, prefix))
}
