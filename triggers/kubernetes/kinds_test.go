package kubernetes

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/triggers"
)

// buildOne builds the one trigger of a playbook's triggers entry
// ({on_deployment_update: {…}}) through the registry, strictly.
func buildOne(t *testing.T, entry string) (triggers.Trigger, error) {
	t.Helper()
	var m map[string]yaml.Node
	if err := yaml.Unmarshal([]byte(entry), &m); err != nil || len(m) != 1 {
		t.Fatalf("%s: not one trigger (%v)", entry, err)
	}
	for name, node := range m {
		return triggers.Build(name, &node)
	}
	return nil, nil
}

func TestChangeTriggerParameters(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ yaml, err string }{
		{`{on_kubernetes_resource_operation: {resources: [deployment, ConfigMap, example.com/v1/widgets], operations: [update]}}`, ""},
		{`{on_kubernetes_resource_operation: {resources: [Deploymnet]}}`, "resources"},
		{`{on_kubernetes_resource_operation: {}}`, "resources"},
		{`{on_deployment_update: {fields_to_monitor: [spec.replicas, "spec.template.spec.containers[0].image"]}}`, ""},
		{`{on_deployment_update: {fields_to_monitor: ["spec..replicas"]}}`, "fields_to_monitor[0]"},
		{`{on_horizontalpodautoscaler_all_changes: {namespace_prefix: shop, labels_selector: "app=api"}}`, ""},
		{`{on_kubernetes_any_resource_delete: {name_prefix: api}}`, ""},
	} {
		_, err := buildOne(t, tt.yaml)
		if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: err %v, want %q", tt.yaml, err, tt.err)
		}
	}
}

// Reading Secrets is opt-in: only a trigger that names them watches them.
func TestAnyResourceLeavesSecretsOut(t *testing.T) {
	t.Parallel()
	isSecrets := func(r string) bool { return r == "secrets" }
	tr, err := buildOne(t, `{on_kubernetes_any_resource_all_changes: {}}`)
	if err != nil {
		t.Fatal(err)
	}
	gvrs := tr.(*Trigger).Resources()
	if len(gvrs) != len(changeKinds)-1 {
		t.Errorf("%d resources watched, want %d", len(gvrs), len(changeKinds)-1)
	}
	for _, g := range gvrs {
		if isSecrets(g.Resource) {
			t.Error("on_kubernetes_any_resource_all_changes watches Secrets")
		}
	}
	tr, err = buildOne(t, `{on_secret_update: {}}`)
	if err != nil {
		t.Fatal(err)
	}
	if g := tr.(*Trigger).Resources(); len(g) != 1 || !isSecrets(g[0].Resource) || g[0].Group != "" {
		t.Errorf("on_secret_update watches %v", g)
	}
}
