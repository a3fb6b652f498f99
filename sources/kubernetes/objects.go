package kubernetes

import (
	"encoding/json"
	"maps"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
)

// occurrenceID derives an event ID from the stable facts of one occurrence,
// so every replica computes the same one.
func occurrenceID(kind event.Kind, facts ...string) string {
	return event.NewID(kubeevent.Source, string(kind)+"|"+strings.Join(facts, "|"), event.StatusFiring, time.Time{})
}

// skippedAnnotations are too big or too noisy to copy onto events.
var skippedAnnotations = map[string]bool{
	"kubectl.kubernetes.io/last-applied-configuration": true,
}

// eventLabels merges the object's labels with the detector's facts; facts
// win over an object label of the same name.
func eventLabels(objLabels map[string]string, facts map[string]string) map[string]string {
	out := make(map[string]string, len(objLabels)+len(facts))
	maps.Copy(out, objLabels)
	for k, v := range facts {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

func eventAnnotations(objAnnotations map[string]string) map[string]string {
	if len(objAnnotations) == 0 {
		return nil
	}
	out := make(map[string]string, len(objAnnotations))
	for k, v := range objAnnotations {
		if !skippedAnnotations[k] {
			out[k] = v
		}
	}
	return out
}

// rawJSON encodes obj for Event.Raw with managedFields stripped and its
// apiVersion and kind set (informers hand out typed objects without them).
func rawJSON(obj runtime.Object, gvk schema.GroupVersionKind) json.RawMessage {
	obj = obj.DeepCopyObject()
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	if gvk.Kind != "" {
		obj.GetObjectKind().SetGroupVersionKind(gvk)
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil
	}
	return b
}

// Owner is the workload that owns an object, resolved through the
// informer caches: pod → ReplicaSet → Deployment, pod → Job → CronJob.
type Owner struct {
	Kind string
	Name string
}

func controllerOf(refs []metav1.OwnerReference) *metav1.OwnerReference {
	for i := range refs {
		if refs[i].Controller != nil && *refs[i].Controller {
			return &refs[i]
		}
	}
	if len(refs) > 0 {
		return &refs[0]
	}
	return nil
}

// ownerOf walks ownerReferences up to the top-level workload. What the
// caches do not hold (an RBAC gap, a deleted owner) ends the walk there.
func (d *Detector) ownerOf(ns, kind, name string, refs []metav1.OwnerReference) Owner {
	own := Owner{Kind: kind, Name: name}
	for range 4 {
		ref := controllerOf(refs)
		if ref == nil {
			return own
		}
		own = Owner{Kind: ref.Kind, Name: ref.Name}
		switch ref.Kind {
		case "ReplicaSet":
			rs, ok := d.cached(ns, "replicasets", ref.Name).(*appsv1.ReplicaSet)
			if !ok {
				return own
			}
			refs = rs.OwnerReferences
		case "Job":
			j, ok := d.cached(ns, "jobs", ref.Name).(*batchv1.Job)
			if !ok {
				return own
			}
			refs = j.OwnerReferences
		default:
			return own
		}
	}
	return own
}

// cached returns an object from a started informer's cache, or nil.
func (d *Detector) cached(ns, informer, name string) any {
	d.mu.Lock()
	started := d.started[informer+"/"+d.scope(ns).ns]
	d.mu.Unlock()
	if !started {
		return nil
	}
	f := d.scope(ns).factory
	var store interface {
		GetByKey(string) (any, bool, error)
	}
	switch informer {
	case "replicasets":
		store = f.Apps().V1().ReplicaSets().Informer().GetIndexer()
	case "jobs":
		store = f.Batch().V1().Jobs().Informer().GetIndexer()
	case "pods":
		store = f.Core().V1().Pods().Informer().GetIndexer()
	default:
		return nil
	}
	key := name
	if ns != "" {
		key = ns + "/" + name
	}
	obj, ok, err := store.GetByKey(key)
	if err != nil || !ok {
		return nil
	}
	return obj
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}
