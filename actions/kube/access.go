package kube

import (
	"github.com/medichq/medic/internal/kube"
)

// APIAccess is every call the evidence actions make to the Kubernetes API:
// verb, API group and resource ("pods/log" for a subresource), cluster-wide.
// It is kept by hand next to the code because it is a promise: the actions'
// tests record every call their fake clients receive and fail on one that
// is not listed here (access_test.go), and test/deploy fails when the
// chart's roles do not grant what is listed. Secrets are never read:
// resource_yaml refuses them before any call.
func APIAccess() []kube.Permission {
	perms := []kube.Permission{
		{Verb: "get", Resource: "pods"},
		{Verb: "list", Resource: "pods"},
		{Verb: "get", Resource: "pods/log"},
		{Verb: "list", Resource: "events"},
		{Verb: "get", Resource: "nodes"},
		{Verb: "list", Resource: "nodes"},
		{Verb: "get", Group: "apps", Resource: "deployments"},
		{Verb: "get", Group: "apps", Resource: "statefulsets"},
		{Verb: "get", Group: "apps", Resource: "daemonsets"},
		{Verb: "get", Group: "apps", Resource: "replicasets"},
		{Verb: "list", Group: "apps", Resource: "replicasets"},
		{Verb: "get", Group: "batch", Resource: "jobs"},
	}
	// resource_yaml reads one object of any kind it knows, Secrets excepted.
	for _, k := range knownKinds {
		if k.resource == "secrets" {
			continue
		}
		p := kube.Permission{Verb: "get", Group: k.group, Resource: k.resource}
		if !hasPermission(perms, p) {
			perms = append(perms, p)
		}
	}
	return perms
}

func hasPermission(perms []kube.Permission, p kube.Permission) bool {
	for _, q := range perms {
		if q.Verb == p.Verb && q.Group == p.Group && q.Resource == p.Resource {
			return true
		}
	}
	return false
}

// HelmAccess is what helm_status_enricher reads, granted only where the
// operator opted in (the chart's kubernetes.helmReleases): Helm's release
// records are Secrets, labelled owner=helm, and the action lists only those.
func HelmAccess() []kube.Permission {
	return []kube.Permission{{Verb: "list", Resource: "secrets"}}
}
