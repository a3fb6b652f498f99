package kubernetes

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
	"github.com/medichq/medic/triggers"
)

// changeKind is what medic knows about one Kind for its change triggers
// (on_<word>_create|update|delete|all_changes): one row per Kind, so adding
// a Kind is one line here and nothing else.
type changeKind struct {
	// Word is the Kind in trigger names: on_<word>_update.
	Word string
	// Kind is the object's Kind, as the API spells it.
	Kind string
	GVR  schema.GroupVersionResource
	// Secret kinds never carry values: not in Event.Raw, not in the diff
	// (only which keys changed).
	Secret bool
}

// changeKinds are the Kinds with their own change triggers, in the order
// the docs list them. on_kubernetes_any_resource_* watches all of them but
// Secrets.
var changeKinds = []changeKind{
	{Word: "pod", Kind: "Pod", GVR: gvr("", "v1", "pods")},
	{Word: "deployment", Kind: "Deployment", GVR: gvr("apps", "v1", "deployments")},
	{Word: "replicaset", Kind: "ReplicaSet", GVR: gvr("apps", "v1", "replicasets")},
	{Word: "statefulset", Kind: "StatefulSet", GVR: gvr("apps", "v1", "statefulsets")},
	{Word: "daemonset", Kind: "DaemonSet", GVR: gvr("apps", "v1", "daemonsets")},
	{Word: "job", Kind: "Job", GVR: gvr("batch", "v1", "jobs")},
	{Word: "cronjob", Kind: "CronJob", GVR: gvr("batch", "v1", "cronjobs")},
	{Word: "node", Kind: "Node", GVR: gvr("", "v1", "nodes")},
	{Word: "service", Kind: "Service", GVR: gvr("", "v1", "services")},
	{Word: "configmap", Kind: "ConfigMap", GVR: gvr("", "v1", "configmaps")},
	{Word: "secret", Kind: "Secret", GVR: gvr("", "v1", "secrets"), Secret: true},
	{Word: "ingress", Kind: "Ingress", GVR: gvr("networking.k8s.io", "v1", "ingresses")},
	{Word: "namespace", Kind: "Namespace", GVR: gvr("", "v1", "namespaces")},
	{Word: "horizontalpodautoscaler", Kind: "HorizontalPodAutoscaler", GVR: gvr("autoscaling", "v2", "horizontalpodautoscalers")},
	{Word: "persistentvolumeclaim", Kind: "PersistentVolumeClaim", GVR: gvr("", "v1", "persistentvolumeclaims")},
}

func gvr(group, version, resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: group, Version: version, Resource: resource}
}

// lookupKind finds a row by its word, Kind, plural resource or
// group/version/resource, case-insensitively ("deployment", "Deployment",
// "deployments", "apps/v1/deployments").
func lookupKind(name string) (changeKind, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	for _, k := range changeKinds {
		if n == k.Word || n == strings.ToLower(k.Kind) || n == k.GVR.Resource || n == kubeevent.FormatGVR(k.GVR) {
			return k, true
		}
	}
	return changeKind{}, false
}

// Change trigger names beyond the per-Kind ones.
const (
	TriggerAnyResourcePrefix = "on_kubernetes_any_resource_"
	TriggerResourceOperation = "on_kubernetes_resource_operation"
)

// changeOps are the trigger-name suffixes and the operations they select.
var changeOps = []struct {
	suffix string
	ops    []string
	doc    string
}{
	{"create", []string{kubeevent.OpCreate}, "is created"},
	{"update", []string{kubeevent.OpUpdate}, "is updated (the event carries what changed)"},
	{"delete", []string{kubeevent.OpDelete}, "is deleted"},
	{"all_changes", []string{kubeevent.OpCreate, kubeevent.OpUpdate, kubeevent.OpDelete}, "is created, updated or deleted"},
}

// ChangeParams are the parameters of the change triggers
// (on_deployment_update, on_kubernetes_any_resource_all_changes, …).
type ChangeParams struct {
	Common `yaml:",inline"`
	// FieldsToMonitor, when set, keeps only updates that change one of these
	// paths (spec.replicas, spec.template.spec.containers[0].image, data):
	// a path matches itself and everything below it.
	FieldsToMonitor []string `yaml:"fields_to_monitor"`
	// Updates that change only status, or only metadata, are ignored unless
	// these are set (as for on_kubernetes_resource).
	IncludeStatusChanges   bool `yaml:"include_status_changes"`
	IncludeMetadataChanges bool `yaml:"include_metadata_changes"`
	// RateLimit per object (default 0: every change).
	RateLimit Duration `yaml:"rate_limit"`
}

// OperationParams are on_kubernetes_resource_operation's parameters
// (Robusta's resources and operations).
type OperationParams struct {
	ChangeParams `yaml:",inline"`
	// Resources are Kinds of the table ("deployment", "ConfigMap") or any
	// group/version/resource ("example.com/v1/widgets").
	Resources []string `yaml:"resources"`
	// Operations among create, update, delete (default: all three).
	Operations []string `yaml:"operations"`
}

func registerChanges(r *triggers.Registry) {
	// Secrets are left out of the any-resource triggers: reading them is
	// opt-in (their own role), so they are watched only where a playbook
	// names on_secret_* or on_kubernetes_resource_operation with secrets.
	var all []schema.GroupVersionResource
	for _, k := range changeKinds {
		if !k.Secret {
			all = append(all, k.GVR)
		}
	}
	for _, op := range changeOps {
		for _, k := range changeKinds {
			name := "on_" + k.Word + "_" + op.suffix
			registerChange(r, name, fmt.Sprintf("Runs when a %s %s.", k.Kind, op.doc), []schema.GroupVersionResource{k.GVR}, op.ops)
		}
		registerChange(r, TriggerAnyResourcePrefix+op.suffix,
			fmt.Sprintf("Runs when an object of any Kind with its own change triggers (Deployment, ConfigMap, …; Secrets excepted) %s.", op.doc), all, op.ops)
	}
	triggers.Add(r, TriggerResourceOperation,
		"Runs when an object of one of resources (Kinds such as deployment, or group/version/resource) is created, updated or deleted, per operations.",
		func() *OperationParams { return &OperationParams{} },
		func(p *OperationParams) (triggers.Trigger, error) {
			if len(p.Resources) == 0 {
				return nil, fmt.Errorf("resources: name at least one (deployment, configmap, apps/v1/deployments…)")
			}
			var gvrs []schema.GroupVersionResource
			for _, r := range p.Resources {
				if k, ok := lookupKind(r); ok {
					gvrs = append(gvrs, k.GVR)
					continue
				}
				g, err := kubeevent.ParseGVR(r)
				if err != nil {
					return nil, fmt.Errorf("resources: %q is neither a known Kind (%s) nor group/version/resource", r, kindWords())
				}
				gvrs = append(gvrs, g)
			}
			ops, err := parseOps(p.Operations)
			if err != nil {
				return nil, err
			}
			return buildChange(TriggerResourceOperation, p, &p.ChangeParams, gvrs, ops)
		})
}

func kindWords() string {
	w := make([]string, len(changeKinds))
	for i, k := range changeKinds {
		w[i] = k.Word
	}
	return strings.Join(w, ", ")
}

func registerChange(r *triggers.Registry, name, doc string, gvrs []schema.GroupVersionResource, ops []string) {
	set := map[string]bool{}
	for _, op := range ops {
		set[op] = true
	}
	triggers.Add(r, name, doc,
		func() *ChangeParams { return &ChangeParams{} },
		func(p *ChangeParams) (triggers.Trigger, error) { return buildChange(name, p, p, gvrs, set) })
}

func parseOps(list []string) (map[string]bool, error) {
	ops := map[string]bool{}
	for _, op := range list {
		switch op {
		case kubeevent.OpCreate, kubeevent.OpUpdate, kubeevent.OpDelete:
			ops[op] = true
		default:
			return nil, fmt.Errorf("operations: %q is not create, update or delete", op)
		}
	}
	if len(ops) == 0 {
		ops = map[string]bool{kubeevent.OpCreate: true, kubeevent.OpUpdate: true, kubeevent.OpDelete: true}
	}
	return ops, nil
}

// buildChange builds a change trigger over gvrs for ops; params is the
// whole parameter struct (it keys the trigger's state).
func buildChange(name string, params any, p *ChangeParams, gvrs []schema.GroupVersionResource, ops map[string]bool) (*Trigger, error) {
	for i, f := range p.FieldsToMonitor {
		if err := kubeevent.CheckPath(f); err != nil {
			return nil, fmt.Errorf("fields_to_monitor[%d]: %w", i, err)
		}
	}
	resources := map[string]bool{}
	for _, g := range gvrs {
		resources[kubeevent.FormatGVR(g)] = true
	}
	t, err := build(name, event.KindKubernetesResource, params, p.Common, time.Duration(p.RateLimit), 0, func(ev *event.Event) bool {
		op := ev.Labels[kubeevent.LabelOperation]
		if !resources[ev.Labels[kubeevent.LabelResource]] || !ops[op] {
			return false
		}
		if op != kubeevent.OpUpdate {
			return true
		}
		if len(p.FieldsToMonitor) > 0 {
			return len(kubeevent.FilterChanges(kubeevent.EventChanges(ev), p.FieldsToMonitor)) > 0
		}
		return updateCounts(ev.Labels[kubeevent.LabelChanged], p.IncludeStatusChanges, p.IncludeMetadataChanges)
	})
	if err != nil {
		return nil, err
	}
	t.gvrs = gvrs
	return t, nil
}

// updateCounts applies the status/metadata rule to the top-level fields an
// update changed.
func updateCounts(changed string, status, metadata bool) bool {
	for _, f := range strings.Split(changed, ",") {
		switch f {
		case "":
		case "status":
			if status {
				return true
			}
		case "metadata":
			if metadata {
				return true
			}
		default:
			return true
		}
	}
	return false
}
