// Package kubefixture runs medic's Kubernetes detector over objects read
// from files, on client-go's fake clientset, for `medic playbooks test
// --event pod.yaml` (playbooks/playtest) and for tests. It is a package of
// its own so that the fake clientset is linked only by that tooling: medic
// serve's code path (internal/app, sources/kubernetes) never imports it, and
// test/repocheck fails if a production package other than playtest does.
package kubefixture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/yaml"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sources/kubernetes"
	"github.com/medichq/medic/triggers"
)

// Kinds are the object kinds whose changes the detector reports:
// a fixture must hold at least one of them.
var Kinds = []string{"Pod", "Job", "Node", "Event"}

// DecodeObjects reads Kubernetes objects as `kubectl get -o yaml` (or
// -o json) prints them: one object, or a List of them (kind: List, or
// PodList, …). Only the types of client-go's scheme (the built-in API) are
// known.
func DecodeObjects(data []byte) ([]runtime.Object, error) {
	raw, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("not JSON or YAML: %v", err)
	}
	obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(raw, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("not a Kubernetes object medic knows: %v", err)
	}
	if meta.IsListType(obj) {
		items, err := meta.ExtractList(obj)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", gvk.Kind, err)
		}
		var out []runtime.Object
		for i, item := range items {
			if u, ok := item.(*runtime.Unknown); ok {
				objs, err := DecodeObjects(u.Raw)
				if err != nil {
					return nil, fmt.Errorf("%s item %d: %w", gvk.Kind, i+1, err)
				}
				out = append(out, objs...)
				continue
			}
			out = append(out, item)
		}
		return out, nil
	}
	return []runtime.Object{obj}, nil
}

// EventsFromObjects runs the detector once over objs, as if a cluster held
// exactly them, for the triggers ts (any trigger type; the Kubernetes ones
// are kept), and returns what it would publish, sorted by subject and kind.
// It is what `medic playbooks test --event pod.yaml` shows.
//
// The detector is the real one, on a fake API with an in-memory publisher
// and state, so events carry the same kinds, labels, titles and IDs as in a
// cluster, and triggers whose parameters refuse the object (restart_count,
// a selector, …) make no event. For a fixture, time has passed: the
// detector's clock starts at now and jumps over every delay (fire_delay of
// on_image_pull_backoff, duration of on_node_not_ready), and past
// transitions are never too old to report. on_kubernetes_resource is not
// run. Owners not among objs end the owner walk (a pod's owner is then its
// ReplicaSet, not the Deployment), as with a missing RBAC permission.
func EventsFromObjects(ctx context.Context, ts []triggers.Trigger, now time.Time, objs ...runtime.Object) ([]event.Event, error) {
	if len(objs) == 0 {
		return nil, errors.New("no Kubernetes object")
	}
	var watched int
	prepared := make([]runtime.Object, 0, len(objs))
	for _, o := range objs {
		o = o.DeepCopyObject()
		m, err := meta.Accessor(o)
		if err != nil {
			return nil, fmt.Errorf("%T is not a Kubernetes object: %v", o, err)
		}
		if m.GetName() == "" {
			return nil, fmt.Errorf("%s without metadata.name", kindOf(o))
		}
		switch o.(type) {
		case *corev1.Pod, *batchv1.Job, *corev1.Event:
			watched++
			if m.GetNamespace() == "" {
				m.SetNamespace(metav1.NamespaceDefault)
			}
		case *corev1.Node:
			watched++
		}
		// The fake API sets these itself.
		m.SetResourceVersion("")
		m.SetManagedFields(nil)
		prepared = append(prepared, o)
	}
	if watched == 0 {
		return nil, fmt.Errorf("%s: medic's Kubernetes triggers report changes of %s objects (core/v1 Event, not events.k8s.io)",
			kindOf(objs[0]), strings.Join(Kinds, ", "))
	}

	client := fake.NewClientset(prepared...)
	pub := &collector{}
	clk := clocktesting.NewFakeClock(now)
	var (
		hmu     sync.Mutex
		handled = map[string]bool{}
	)
	d, err := kubernetes.NewDetector(kubernetes.Options{
		Kube:      client,
		Publisher: pub,
		Logger:    slog.New(slog.DiscardHandler),
		Clock:     clk,
		// A fixture's transitions are never too old.
		MaxEventAge: 100 * 365 * 24 * time.Hour,
		OnHandled: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if o, ok := obj.(runtime.Object); ok {
				hmu.Lock()
				handled[objectKey(o)] = true
				hmu.Unlock()
			}
		},
	})
	if err != nil {
		return nil, err
	}
	d.SetInterest(kubernetes.InterestOf(ts))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		return nil, err
	}
	defer d.Stop()
	if err := d.WaitForSync(ctx); err != nil {
		return nil, err
	}

	// Wait until every object an informer with a handler watches was
	// looked at; what that queued is then counted by Idle.
	var want []string
	for _, o := range prepared {
		inf := ""
		switch o.(type) {
		case *corev1.Pod:
			inf = "pods"
		case *batchv1.Job:
			inf = "jobs"
		case *corev1.Event:
			inf = "events"
		case *corev1.Node:
			inf = "nodes"
		}
		if inf != "" && d.Watching(inf) {
			want = append(want, objectKey(o))
		}
	}
	wait := func(what string, done func() bool) error {
		for !done() {
			select {
			case <-ctx.Done():
				return fmt.Errorf("kubernetes fixture: timed out waiting for %s", what)
			case <-time.After(2 * time.Millisecond):
			}
		}
		return nil
	}
	if err := wait("the objects to be handled", func() bool {
		hmu.Lock()
		defer hmu.Unlock()
		for _, k := range want {
			if !handled[k] {
				return false
			}
		}
		return true
	}); err != nil {
		return nil, err
	}
	// Run until idle, then jump to the next delayed re-check, until none
	// is left. The fake clock runs a timer's callback (which queues the
	// re-check) inside SetTime, so Idle cannot be seen between the two.
	for range 100 {
		if err := wait("the detector to be idle", d.Idle); err != nil {
			return nil, err
		}
		at, ok := d.NextTimer()
		if !ok {
			break
		}
		clk.SetTime(later(at, clk.Now())) // a timer already due fires too
	}
	if err := wait("the detector to be idle", d.Idle); err != nil {
		return nil, err
	}
	out := pub.all()
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if sa, sb := a.Subject.String(), b.Subject.String(); sa != sb {
			return sa < sb
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Title < b.Title
	})
	return out, nil
}

func kindOf(o runtime.Object) string {
	if k := o.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return k
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", o), "*")
}

func objectKey(o runtime.Object) string {
	m, err := meta.Accessor(o)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%T/%s/%s", o, m.GetNamespace(), m.GetName())
}

// collector is the in-memory publisher of a fixture run.
type collector struct {
	mu     sync.Mutex
	events []event.Event
	ids    map[string]bool
}

func (c *collector) Publish(_ context.Context, evs []event.Event) (event.PublishResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids == nil {
		c.ids = map[string]bool{}
	}
	var res event.PublishResult
	for _, ev := range evs {
		if c.ids[ev.ID] {
			res.Duplicates++
			continue
		}
		c.ids[ev.ID] = true
		c.events = append(c.events, ev)
		res.Stored++
	}
	return res, nil
}

func (c *collector) all() []event.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]event.Event(nil), c.events...)
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
