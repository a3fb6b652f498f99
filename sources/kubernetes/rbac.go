package kubernetes

import (
	"slices"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/kube"
)

// Permissions lists what the detector needs to list and watch for the
// triggers of kinds, in namespaces (empty: cluster-wide). Resources of
// on_kubernetes_resource triggers are not included.
func Permissions(namespaces []string, kinds []event.Kind) []kube.Permission {
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	want := map[event.Kind]bool{}
	for _, k := range kinds {
		want[k] = true
	}
	type res struct{ group, resource string }
	var namespaced []res
	if slices.ContainsFunc(podKinds, func(k event.Kind) bool { return want[k] }) {
		namespaced = append(namespaced, res{"", "pods"}, res{"apps", "replicasets"}, res{"batch", "jobs"})
	} else if want[event.KindJobFailure] {
		namespaced = append(namespaced, res{"batch", "jobs"})
	}
	if want[event.KindKubernetesWarningEvent] {
		namespaced = append(namespaced, res{"", "events"})
	}
	var out []kube.Permission
	for _, ns := range namespaces {
		for _, r := range namespaced {
			for _, verb := range []string{"list", "watch"} {
				out = append(out, kube.Permission{Verb: verb, Group: r.group, Resource: r.resource, Namespace: ns})
			}
		}
	}
	if want[event.KindNodeNotReady] {
		out = append(out, kube.Permission{Verb: "list", Resource: "nodes"}, kube.Permission{Verb: "watch", Resource: "nodes"})
	}
	return out
}
