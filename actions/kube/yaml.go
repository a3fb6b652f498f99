package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

// knownKinds map the kinds playbooks name to their API resource, so
// resource_yaml needs no discovery round trip.
var knownKinds = []struct {
	kind, group, version, resource string
	namespaced                     bool
}{
	{"Pod", "", "v1", "pods", true},
	{"Service", "", "v1", "services", true},
	{"ConfigMap", "", "v1", "configmaps", true},
	{"Secret", "", "v1", "secrets", true},
	{"PersistentVolumeClaim", "", "v1", "persistentvolumeclaims", true},
	{"ServiceAccount", "", "v1", "serviceaccounts", true},
	{"Endpoints", "", "v1", "endpoints", true},
	{"Node", "", "v1", "nodes", false},
	{"Namespace", "", "v1", "namespaces", false},
	{"PersistentVolume", "", "v1", "persistentvolumes", false},
	{"Deployment", "apps", "v1", "deployments", true},
	{"StatefulSet", "apps", "v1", "statefulsets", true},
	{"DaemonSet", "apps", "v1", "daemonsets", true},
	{"ReplicaSet", "apps", "v1", "replicasets", true},
	{"Job", "batch", "v1", "jobs", true},
	{"CronJob", "batch", "v1", "cronjobs", true},
	{"Ingress", "networking.k8s.io", "v1", "ingresses", true},
	{"NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies", true},
	{"HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers", true},
	{"PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets", true},
	{"StorageClass", "storage.k8s.io", "v1", "storageclasses", false},
}

// ResourceYAMLParams are the parameters of resource_yaml.
type ResourceYAMLParams struct {
	// Kind, Namespace and Name are templates naming the object; empty: the
	// event's subject.
	Kind      string `yaml:"kind"`
	Namespace string `yaml:"namespace"`
	Name      string `yaml:"name"`
	// APIVersion and Resource name a kind medic does not know (a custom
	// resource): api_version "monitoring.coreos.com/v1", resource
	// "prometheusrules".
	APIVersion string `yaml:"api_version"`
	Resource   string `yaml:"resource"`
	// MaxLines bounds the YAML shown.
	MaxLines int `yaml:"max_lines"`
}

// errSecret is why resource_yaml never shows a Secret.
var errSecret = errors.New("resource_yaml never shows Secrets: their data would end up in chat and finding files")

// Validate rejects Secrets at load time, when the kind is not a template.
func (p *ResourceYAMLParams) Validate() error {
	if isSecret(p.Kind, p.Resource) {
		return errSecret
	}
	if (p.APIVersion == "") != (p.Resource == "") {
		return errors.New("api_version and resource go together")
	}
	if p.MaxLines < 1 || p.MaxLines > 5000 {
		return fmt.Errorf("max_lines must be between 1 and 5000, got %d", p.MaxLines)
	}
	return nil
}

func isSecret(kind, res string) bool {
	return strings.EqualFold(strings.TrimSpace(kind), "secret") || strings.EqualFold(strings.TrimSpace(kind), "secrets") ||
		strings.EqualFold(strings.TrimSpace(res), "secrets")
}

// yamlDeps is what resource_yaml uses: the dynamic client, which reads an
// object of any kind, and the cluster name its templates may show.
type yamlDeps = interface {
	DynamicClient() dynamic.Interface
	Cluster() string
}

func addYAML(r *actions.Registry) {
	actions.Add(r, "resource_yaml",
		"Add an object's YAML (default: the event's subject) without managedFields and the last-applied annotation. Secrets are never shown.",
		func() *ResourceYAMLParams { return &ResourceYAMLParams{MaxLines: 300} },
		func(p *ResourceYAMLParams) (actions.Runner[yamlDeps], error) {
			target, err := newObjectTarget(p.Kind, p.Namespace, p.Name)
			if err != nil {
				return nil, err
			}
			params := *p
			return run("resource_yaml", "YAML", func(ctx context.Context, deps yamlDeps, f *event.Finding) error {
				dyn := deps.DynamicClient()
				if dyn == nil {
					return errNoCluster
				}
				kind, ns, name, err := target.resolve(deps.Cluster(), f)
				if err != nil {
					return err
				}
				if isSecret(kind, params.Resource) {
					return errSecret
				}
				gvr, namespaced, err := resourceFor(kind, params.APIVersion, params.Resource)
				if err != nil {
					return err
				}
				var obj *unstructured.Unstructured
				if namespaced {
					if ns == "" {
						return problemf("%s %s needs a namespace", strings.ToLower(kind), name)
					}
					obj, err = dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
				} else {
					ns = ""
					obj, err = dyn.Resource(gvr).Get(ctx, name, metav1.GetOptions{})
				}
				if err != nil {
					return call{verb: "get", resource: gvr.Resource, namespace: ns, name: name}.explain(err)
				}
				if isSecret(obj.GetKind(), "") {
					return errSecret
				}
				text, _, err := ObjectYAML(obj, params.MaxLines)
				if err != nil {
					return err
				}
				what := strings.ToLower(kind) + " " + ref(ns, name)
				f.Add(event.Enrichment{
					Title:  "YAML of " + what,
					Source: "resource_yaml",
					Blocks: []event.Block{event.LogTextBlock(what+" (YAML)", text, false)},
				})
				return nil
			}), nil
		})
}

// resourceFor maps a kind (or an explicit api_version and resource) to its
// API resource.
func resourceFor(kind, apiVersion, res string) (schema.GroupVersionResource, bool, error) {
	if res != "" {
		gv, err := schema.ParseGroupVersion(apiVersion)
		if err != nil {
			return schema.GroupVersionResource{}, false, problemf("api_version %q: %v", apiVersion, err)
		}
		// A custom resource: assume namespaced unless no namespace is given.
		return gv.WithResource(res), true, nil
	}
	for _, k := range knownKinds {
		if strings.EqualFold(kind, k.kind) || strings.EqualFold(kind, k.resource) {
			return schema.GroupVersionResource{Group: k.group, Version: k.version, Resource: k.resource}, k.namespaced, nil
		}
	}
	return schema.GroupVersionResource{}, false, problemf("resource_yaml does not know kind %q; set api_version and resource", kind)
}

// ObjectYAML renders an object as YAML for people: without managedFields,
// and the last-applied-configuration annotation (a second copy of the
// spec), at most maxLines lines (then a comment says how many were cut).
func ObjectYAML(obj *unstructured.Unstructured, maxLines int) (string, bool, error) {
	o := obj.DeepCopy()
	unstructured.RemoveNestedField(o.Object, "metadata", "managedFields")
	if ann := o.GetAnnotations(); ann != nil {
		delete(ann, "kubectl.kubernetes.io/last-applied-configuration")
		if len(ann) == 0 {
			unstructured.RemoveNestedField(o.Object, "metadata", "annotations")
		} else {
			o.SetAnnotations(ann)
		}
	}
	b, err := yaml.Marshal(o.Object)
	if err != nil {
		return "", false, fmt.Errorf("encode %s as YAML: %w", o.GetName(), err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	truncated := false
	if maxLines > 0 && len(lines) > maxLines {
		cut := len(lines) - maxLines
		lines, truncated = append(lines[:maxLines], fmt.Sprintf("# … %d more lines (max_lines: %d)", cut, maxLines)), true
	}
	return strings.Join(lines, "\n") + "\n", truncated, nil
}
