package kubernetes

import (
	"strings"
	"testing"
)

func TestChangeTriggerParameters(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, params, err string }{
		{TriggerResourceOperation, `{resources: [deployment, ConfigMap, example.com/v1/widgets], operations: [update]}`, ""},
		{TriggerResourceOperation, `{resources: [Deploymnet]}`, "resources"},
		{TriggerResourceOperation, `{}`, "resources"},
		{"on_deployment_update", `{fields_to_monitor: [spec.replicas, "spec.template.spec.containers[0].image"]}`, ""},
		{"on_deployment_update", `{fields_to_monitor: ["spec..replicas"]}`, "fields_to_monitor[0]"},
		{"on_horizontalpodautoscaler_all_changes", `{namespace_prefix: shop, labels_selector: "app=api"}`, ""},
		{"on_kubernetes_any_resource_delete", `{name_prefix: api}`, ""},
	} {
		_, err := buildTrigger(t, tt.name, tt.params)
		if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s %s: err %v, want %q", tt.name, tt.params, err, tt.err)
		}
	}
}

// Reading Secrets is opt-in: only a trigger that names them watches them.
func TestAnyResourceLeavesSecretsOut(t *testing.T) {
	t.Parallel()
	isSecrets := func(r string) bool { return r == "secrets" }
	tr, err := buildTrigger(t, TriggerAnyResourcePrefix+"all_changes", "{}")
	if err != nil {
		t.Fatal(err)
	}
	gvrs := tr.Resources()
	if len(gvrs) != len(changeKinds)-1 {
		t.Errorf("%d resources watched, want %d", len(gvrs), len(changeKinds)-1)
	}
	for _, g := range gvrs {
		if isSecrets(g.Resource) {
			t.Error("on_kubernetes_any_resource_all_changes watches Secrets")
		}
	}
	tr, err = buildTrigger(t, "on_secret_update", "{}")
	if err != nil {
		t.Fatal(err)
	}
	if g := tr.Resources(); len(g) != 1 || !isSecrets(g[0].Resource) || g[0].Group != "" {
		t.Errorf("on_secret_update watches %v", g)
	}
}
