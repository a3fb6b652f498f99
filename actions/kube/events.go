package kube

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

// EventsParams are the parameters of pod_events_enricher.
type EventsParams struct {
	// MaxEvents bounds the rows shown (warnings first, then the newest).
	MaxEvents int `yaml:"max_events"`
	// WarningsOnly leaves out Normal events.
	WarningsOnly bool `yaml:"warnings_only"`
}

// Validate checks bounds.
func (p *EventsParams) Validate() error {
	if p.MaxEvents < 1 || p.MaxEvents > 500 {
		return fmt.Errorf("max_events must be between 1 and 500, got %d", p.MaxEvents)
	}
	return nil
}

// ResourceEventsParams are the parameters of resource_events_enricher.
type ResourceEventsParams struct {
	EventsParams `yaml:",inline"`
	// Kind, Namespace and Name are templates over the event naming the
	// object; empty: the event's subject.
	Kind      string `yaml:"kind"`
	Namespace string `yaml:"namespace"`
	Name      string `yaml:"name"`
}

func addEvents(r *actions.Registry) {
	actions.Add(r, "pod_events_enricher",
		"Add the Kubernetes events of the pod (warnings first, newest first).",
		func() *EventsParams { return &EventsParams{MaxEvents: 20} },
		func(p *EventsParams) (actions.Runner[kubeDeps], error) {
			params := *p
			return runOnPod("pod_events_enricher", "Pod events", func(ctx context.Context, kc kubernetes.Interface, rp *resolvedPod, f *event.Finding) error {
				pod := rp.Pod
				evs, err := objectEvents(ctx, kc, "Pod", pod.Namespace, pod.Name)
				if err != nil {
					return err
				}
				blocks := rp.preface()
				if rp.Snapshot != "" {
					blocks = blocks[:0]
				}
				f.Add(event.Enrichment{
					Title:  "Events of pod " + ref(pod.Namespace, pod.Name),
					Source: "pod_events_enricher",
					Blocks: append(blocks, EventsBlock(evs, params.MaxEvents, params.WarningsOnly, "pod "+ref(pod.Namespace, pod.Name))),
				})
				return nil
			}), nil
		})

	actions.Add(r, "resource_events_enricher",
		"Add the Kubernetes events of any object (default: the event's subject), warnings first.",
		func() *ResourceEventsParams { return &ResourceEventsParams{EventsParams: EventsParams{MaxEvents: 20}} },
		func(p *ResourceEventsParams) (actions.Runner[resourceEventsDeps], error) {
			target, err := newObjectTarget(p.Kind, p.Namespace, p.Name)
			if err != nil {
				return nil, err
			}
			params := *p
			return run("resource_events_enricher", "Events", func(ctx context.Context, deps resourceEventsDeps, f *event.Finding) error {
				kc, err := client(deps)
				if err != nil {
					return err
				}
				kind, ns, name, err := target.resolve(deps.Cluster(), f)
				if err != nil {
					return err
				}
				if kind == "Node" {
					ns = ""
				}
				evs, err := objectEvents(ctx, kc, kind, ns, name)
				if err != nil {
					return err
				}
				what := strings.ToLower(kind) + " " + ref(ns, name)
				f.Add(event.Enrichment{
					Title:  "Events of " + what,
					Source: "resource_events_enricher",
					Blocks: []event.Block{EventsBlock(evs, params.MaxEvents, params.WarningsOnly, what)},
				})
				return nil
			}), nil
		})
}

// resourceEventsDeps is what resource_events_enricher uses: the typed
// client, and the cluster name its templates may show.
type resourceEventsDeps = interface {
	KubeClient() kubernetes.Interface
	Cluster() string
}

// objectTarget names an object by templates, falling back to the subject.
type objectTarget struct {
	kind, namespace, name *actions.Template
}

func newObjectTarget(kind, namespace, name string) (*objectTarget, error) {
	t := &objectTarget{}
	var err error
	for _, x := range []struct {
		src string
		dst **actions.Template
		key string
	}{{kind, &t.kind, "kind"}, {namespace, &t.namespace, "namespace"}, {name, &t.name, "name"}} {
		if x.src == "" {
			continue
		}
		if *x.dst, err = actions.ParseTemplate(x.key, x.src); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *objectTarget) resolve(cluster string, f *event.Finding) (kind, namespace, name string, err error) {
	s := SubjectOf(&f.Event)
	kind, namespace, name = s.Kind, s.Namespace, s.Name
	if kind == "" && s.Node != "" && s.Name == "" {
		kind, name = "Node", s.Node
	}
	for _, x := range []struct {
		t   *actions.Template
		dst *string
	}{{t.kind, &kind}, {t.namespace, &namespace}, {t.name, &name}} {
		if x.t == nil {
			continue
		}
		v, err := x.t.Render(cluster, f)
		if err != nil {
			return "", "", "", err
		}
		*x.dst = strings.TrimSpace(v)
	}
	if kind == "" || name == "" {
		return "", "", "", problemf("the event names no object (kind and name); set kind and name")
	}
	return canonicalKind(kind), namespace, name, nil
}

// canonicalKind accepts "deployment", "deployments", "Deployment".
func canonicalKind(k string) string {
	for _, known := range knownKinds {
		if strings.EqualFold(k, known.kind) || strings.EqualFold(k, known.resource) {
			return known.kind
		}
	}
	return k
}

// objectEvents lists the events whose involved object is kind/ns/name.
// Node events are recorded in the default namespace with an empty object
// namespace, so they are listed across namespaces.
func objectEvents(ctx context.Context, kc kubernetes.Interface, kind, namespace, name string) ([]corev1.Event, error) {
	sel := fields.Set{"involvedObject.kind": kind, "involvedObject.name": name}
	if namespace != "" {
		sel["involvedObject.namespace"] = namespace
	}
	list, err := kc.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
	if err != nil {
		return nil, call{verb: "list", resource: "events", namespace: namespace}.explain(err)
	}
	// The selector again, on our side: not every client honours field
	// selectors (fakes do not).
	return slices.DeleteFunc(list.Items, func(e corev1.Event) bool {
		o := e.InvolvedObject
		return o.Kind != kind || o.Name != name || (namespace != "" && o.Namespace != namespace)
	}), nil
}

// lastSeen is when an event last happened, from whichever field the
// reporting component filled.
func lastSeen(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

// eventCount is how often the event happened.
func eventCount(e *corev1.Event) int32 {
	switch {
	case e.Series != nil && e.Series.Count > 0:
		return e.Series.Count
	case e.Count > 0:
		return e.Count
	}
	return 1
}

func eventSource(e *corev1.Event) string {
	return firstNonEmpty(e.Source.Component, e.ReportingController)
}

// SortEvents orders events warnings first, then newest first, then by reason.
func SortEvents(evs []corev1.Event) {
	slices.SortStableFunc(evs, func(a, b corev1.Event) int {
		aw, bw := a.Type == corev1.EventTypeWarning, b.Type == corev1.EventTypeWarning
		if aw != bw {
			if aw {
				return -1
			}
			return 1
		}
		if c := lastSeen(&b).Compare(lastSeen(&a)); c != 0 {
			return c
		}
		return strings.Compare(a.Reason, b.Reason)
	})
}

// EventsBlock renders events as a table, warnings first, at most max rows;
// with none it says so (the API keeps events for an hour by default).
func EventsBlock(evs []corev1.Event, max int, warningsOnly bool, what string) event.Block {
	evs = slices.Clone(evs)
	if warningsOnly {
		evs = slices.DeleteFunc(evs, func(e corev1.Event) bool { return e.Type != corev1.EventTypeWarning })
	}
	if len(evs) == 0 {
		kind := "events"
		if warningsOnly {
			kind = "warning events"
		}
		return event.MarkdownBlock(fmt.Sprintf("No %s for %s (the cluster keeps events for about an hour).", kind, what))
	}
	SortEvents(evs)
	omitted := 0
	if max > 0 && len(evs) > max {
		omitted = len(evs) - max
		evs = evs[:max]
	}
	rows := make([][]string, 0, len(evs)+1)
	for i := range evs {
		e := &evs[i]
		rows = append(rows, []string{
			e.Type, e.Reason, lastSeen(e).UTC().Format(timeLayout), strconv.Itoa(int(eventCount(e))),
			eventSource(e), truncate(oneLine(e.Message), 300),
		})
	}
	if omitted > 0 {
		rows = append(rows, []string{"…", fmt.Sprintf("%d more", omitted)})
	}
	return table([]string{"type", "reason", "last seen", "count", "from", "message"}, rows)
}
