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
	wanted := func(ks ...event.Kind) bool {
		return slices.ContainsFunc(ks, func(k event.Kind) bool { return slices.Contains(kinds, k) })
	}
	needed := neededKinds(wanted)
	var out []kube.Permission
	for _, ns := range namespaces {
		for _, k := range needed {
			if k.cluster {
				continue
			}
			for _, verb := range []string{"list", "watch"} {
				out = append(out, kube.Permission{Verb: verb, Group: k.group, Resource: k.resource, Namespace: ns})
			}
		}
	}
	for _, k := range needed {
		if k.cluster {
			out = append(out, kube.Permission{Verb: "list", Group: k.group, Resource: k.resource},
				kube.Permission{Verb: "watch", Group: k.group, Resource: k.resource})
		}
	}
	return out
}
