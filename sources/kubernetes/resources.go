package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
)

// dynWatch is the informers of one resource named by on_kubernetes_resource
// triggers, one per watched namespace; they stop when no trigger names the
// resource any more.
type dynWatch struct {
	gvr   schema.GroupVersionResource
	stopC chan struct{}
	// once: stop is called both by reconcileDynamic (under d.mu) and by the
	// goroutine that ends the watch with the detector (without it), so a
	// check-then-close could close twice.
	once  sync.Once
	syncs []namedSync
}

func (w *dynWatch) stop() { w.once.Do(func() { close(w.stopC) }) }

// reconcileDynamic starts and stops resource watches; d.mu is held.
func (d *Detector) reconcileDynamic() {
	if !d.running || d.stopped {
		return
	}
	want := d.interest.Load().gvrs
	for gvr, w := range d.dyn {
		if !want[gvr] {
			w.stop()
			delete(d.dyn, gvr)
		}
	}
	if d.opts.Dynamic == nil {
		if len(want) > 0 {
			d.log.Warn("on_kubernetes_resource needs the dynamic client; it stays silent")
		}
		return
	}
	for gvr := range want {
		if _, ok := d.dyn[gvr]; ok {
			continue
		}
		namespaces := []string{""}
		if len(d.opts.Namespaces) > 0 && d.namespaced(gvr) {
			namespaces = d.opts.Namespaces
		}
		w := &dynWatch{gvr: gvr, stopC: make(chan struct{})}
		stop := w.stopC
		go func() { // end with the detector too
			select {
			case <-d.ctx.Done():
				w.stop()
			case <-stop:
			}
		}()
		res := kubeevent.FormatGVR(gvr)
		for _, ns := range namespaces {
			inf := dynamicinformer.NewFilteredDynamicInformer(d.opts.Dynamic, gvr, ns, d.opts.Resync, cache.Indexers{}, nil).Informer()
			name := "resource " + res + "/" + ns
			_ = inf.SetWatchErrorHandlerWithContext(d.watchErrors(name, gvr.GroupResource().String(), ns))
			_, err := inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
				AddFunc:    func(obj any, _ bool) { d.onResource(gvr, kubeevent.OpCreate, nil, obj); d.notify(obj) },
				UpdateFunc: func(old, obj any) { d.onResource(gvr, kubeevent.OpUpdate, old, obj); d.notify(obj) },
				DeleteFunc: func(obj any) { d.onResource(gvr, kubeevent.OpDelete, nil, obj); d.notify(obj) },
			})
			if err != nil {
				d.log.Error("cannot watch resource", "resource", res, "err", err)
				continue
			}
			w.syncs = append(w.syncs, namedSync{name: name, synced: inf.HasSynced})
			go inf.Run(stop)
		}
		d.dyn[gvr] = w
		d.log.Info("watching resource for on_kubernetes_resource", "resource", res, "namespaces", namespaces)
	}
}

// namespaced asks discovery whether gvr is namespaced; unknown counts as
// namespaced (watching it per namespace is the narrower choice).
func (d *Detector) namespaced(gvr schema.GroupVersionResource) bool {
	list, err := d.opts.Kube.Discovery().ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if err != nil {
		return true
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource {
			return r.Namespaced
		}
	}
	return true
}

// onResource turns a create, update or delete of any resource into a
// kubernetes_resource candidate. Objects listed when a watch starts count
// as created only when they are younger than MaxEventAge (the age rule),
// so a restart does not report the whole cluster as new.
func (d *Detector) onResource(gvr schema.GroupVersionResource, op string, oldObj, obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || !d.wants(event.KindKubernetesResource) {
		return
	}
	var changed []string
	var diff []kubeevent.Change
	secret := isSecretResource(gvr)
	fact := u.GetCreationTimestamp().Time
	switch op {
	case kubeevent.OpUpdate:
		old, ok := oldObj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		changed = changedFields(old.Object, u.Object)
		if len(changed) == 0 {
			return // a resync or a bookkeeping-only write
		}
		diff = diffObjects(old.Object, u.Object, secret)
		fact = d.clock.Now()
	case kubeevent.OpDelete:
		fact = d.clock.Now()
		if ts := u.GetDeletionTimestamp(); ts != nil {
			fact = ts.Time
		}
	}
	res := kubeevent.FormatGVR(gvr)
	kind := u.GetKind()
	facts := map[string]string{
		kubeevent.LabelNamespace: u.GetNamespace(),
		kubeevent.LabelName:      u.GetName(),
		kubeevent.LabelKind:      kind,
		kubeevent.LabelResource:  res,
		kubeevent.LabelOperation: op,
		kubeevent.LabelChanged:   strings.Join(changed, ","),
	}
	target := kind + " " + u.GetName()
	if u.GetNamespace() != "" {
		target = kind + " " + u.GetNamespace() + "/" + u.GetName()
	}
	past := map[string]string{kubeevent.OpCreate: "created", kubeevent.OpUpdate: "updated", kubeevent.OpDelete: "deleted"}[op]
	title := fmt.Sprintf("%s %s", target, past)
	if op == kubeevent.OpUpdate {
		title += " (" + strings.Join(changed, ", ") + ")"
	}
	clean := u.DeepCopy()
	clean.SetManagedFields(nil)
	hash := contentHash(clean.Object)
	if secret {
		redactSecret(clean)
	}
	raw, _ := json.Marshal(clean.Object)
	annotations := eventAnnotations(u.GetAnnotations())
	var description string
	if len(diff) > 0 {
		b, _ := json.Marshal(diff)
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[kubeevent.AnnotationChanges] = string(b)
		description = kubeevent.SummarizeChanges(diff)
	}
	ev := event.Event{
		Kind:        event.KindKubernetesResource,
		Source:      kubeevent.Source,
		Status:      event.StatusFiring,
		Severity:    event.SeverityInfo,
		Title:       title,
		Description: description,
		Labels:      eventLabels(u.GetLabels(), facts),
		Annotations: annotations,
		Subject:     event.Subject{Kind: kind, Namespace: u.GetNamespace(), Name: u.GetName()},
		StartsAt:    fact.UTC(),
		Raw:         raw,
	}
	// The resource version and the content identify an update on every
	// replica; a fake API without resource versions still tells updates apart.
	ev.ID = occurrenceID(event.KindKubernetesResource, res, string(u.GetUID()), op, u.GetResourceVersion(), hash)
	ev.Fingerprint = ev.ID
	d.offer(candidate{ev: ev, subject: res + "/" + u.GetNamespace() + "/" + u.GetName(), factTime: fact})
}

// changedFields lists the top-level fields whose values differ, metadata
// bookkeeping (resourceVersion, managedFields, generation) aside.
func changedFields(old, cur map[string]any) []string {
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range cur {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		a, b := old[k], cur[k]
		if k == "metadata" {
			a, b = stripBookkeeping(a), stripBookkeeping(b)
		}
		if !reflect.DeepEqual(a, b) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func stripBookkeeping(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		switch k {
		case "resourceVersion", "managedFields", "generation":
		default:
			out[k] = x
		}
	}
	return out
}

func contentHash(obj map[string]any) string {
	b, _ := json.Marshal(obj) // map keys are sorted
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// redactSecret keeps a Secret's keys and drops its values (data,
// stringData, and the last-applied annotation that repeats them), so no
// event, finding or sink ever holds them.
func redactSecret(u *unstructured.Unstructured) {
	for _, field := range []string{"data", "stringData"} {
		m, ok := u.Object[field].(map[string]any)
		if !ok {
			continue
		}
		keys := make(map[string]any, len(m))
		for k := range m {
			keys[k] = ""
		}
		u.Object[field] = keys
	}
	if a := u.GetAnnotations(); a != nil {
		for k := range skippedAnnotations {
			delete(a, k)
		}
		u.SetAnnotations(a)
	}
}

// isSecretResource reports whether objects of gvr hold secret values.
func isSecretResource(g schema.GroupVersionResource) bool {
	return g.Group == "" && g.Resource == "secrets"
}
