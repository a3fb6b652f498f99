package kubernetes

import (
	"slices"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/medichq/medic/event"
)

// watchedKind is one Kind the detector watches with a typed informer, and
// what it means to medic: the events its objects turn into, the other
// Kinds its handler reads from the informer caches, and the handler. What
// an object of the Kind becomes (its events, their subject, labels and
// evidence) is the handler's file: pods.go, jobs.go, nodes.go, events.go,
// the way k8sgpt keeps one analyzer per Kind. Adding a Kind is a row here
// and a file; the informers, the re-scan after a reload and the permission
// check all read this table. (Helm's release records and the resources of
// the change triggers have watches of their own: helm.go, resources.go.)
type watchedKind struct {
	// name keys the informer ("pods/<namespace>") and names it in errors.
	name string
	// group and resource name it for RBAC; resource.group in error logs.
	group, resource string
	// cluster-scoped Kinds have one informer; the others one per watched
	// namespace.
	cluster bool
	// events are the event kinds the handler produces: the informer runs
	// while a playbook wants one of them.
	events []event.Kind
	// reads are the Kinds the handler looks up in their caches (a pod's
	// ReplicaSet and Job, to name its owning workload: what the rate limits
	// count per); they are watched with it.
	reads    []string
	informer func(informers.SharedInformerFactory) cache.SharedIndexInformer
	// handle looks at one object: added, updated, or again after the
	// interest changed. nil: the informer is a cache for another Kind.
	handle func(d *Detector, obj any)
	// deleted looks at an object that is gone; nil: deletions mean nothing.
	deleted func(d *Detector, obj any)
}

// podKinds are the events of a pod's containers and phase.
var podKinds = []event.Kind{event.KindPodCrashLoop, event.KindPodOOMKilled, event.KindContainerOOMKilled, event.KindImagePullBackoff, event.KindPodEvicted}

// watchedKinds are the Kinds with typed informers, in the order their
// permissions are listed.
var watchedKinds = []watchedKind{
	{
		name: "pods", resource: "pods", events: podKinds, reads: []string{"replicasets", "jobs"},
		informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Core().V1().Pods().Informer()
		},
		handle: (*Detector).onPod, deleted: (*Detector).onPodDeleted,
	},
	{
		name: "replicasets", group: "apps", resource: "replicasets",
		informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Apps().V1().ReplicaSets().Informer()
		},
	},
	{
		name: "jobs", group: "batch", resource: "jobs", events: []event.Kind{event.KindJobFailure},
		informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Batch().V1().Jobs().Informer()
		},
		handle: (*Detector).onJob,
	},
	{
		name: "events", resource: "events", events: []event.Kind{event.KindKubernetesWarningEvent},
		informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Core().V1().Events().Informer()
		},
		handle: (*Detector).onWarningEvent,
	},
	{
		name: "nodes", resource: "nodes", cluster: true, events: []event.Kind{event.KindNodeNotReady},
		informer: func(f informers.SharedInformerFactory) cache.SharedIndexInformer {
			return f.Core().V1().Nodes().Informer()
		},
		handle: (*Detector).onNode, deleted: (*Detector).onNode,
	},
}

// neededKinds are the rows of watchedKinds that wanted (whether a playbook
// wants one of some event kinds) calls for: those whose events are wanted
// and those they read.
func neededKinds(wanted func(...event.Kind) bool) []watchedKind {
	need := map[string]bool{}
	for _, k := range watchedKinds {
		if wanted(k.events...) {
			need[k.name] = true
			for _, r := range k.reads {
				need[r] = true
			}
		}
	}
	return slices.DeleteFunc(slices.Clone(watchedKinds), func(k watchedKind) bool { return !need[k.name] })
}

// lookupWatched finds a row by its name.
func lookupWatched(name string) (watchedKind, bool) {
	i := slices.IndexFunc(watchedKinds, func(k watchedKind) bool { return k.name == name })
	if i < 0 {
		return watchedKind{}, false
	}
	return watchedKinds[i], true
}

// errorName is how forbidden-error logs name the resource: "pods",
// "jobs.batch".
func (k watchedKind) errorName() string {
	if k.group == "" {
		return k.resource
	}
	return k.resource + "." + k.group
}

// handlers are the informer's event handlers for the row.
func (k watchedKind) handlers(d *Detector) cache.ResourceEventHandler {
	if k.handle == nil {
		return nil
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.handle(d, obj); d.notify(obj) },
		UpdateFunc: func(_, obj any) { k.handle(d, obj); d.notify(obj) },
	}
	if k.deleted != nil {
		h.DeleteFunc = func(obj any) { k.deleted(d, obj); d.notify(obj) }
	}
	return h
}
