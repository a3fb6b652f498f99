package remediate_test

import (
	"time"

	"context"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/actions/kube"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/playbooks"

	"github.com/medichq/medic/actions/remediate"
	"github.com/medichq/medic/triggers"
	"github.com/medichq/medic/triggers/prometheus"
)

// registered is this package's actions, as internal/plugins.Builtin adds
// them, and package kube's (the policy test's playbook names logs_enricher).
var registered = func() *actions.Registry {
	r := actions.NewRegistry()
	kube.Register(r)
	remediate.Register(r)
	return r
}()

func buildAction(t *testing.T, name, params string) actions.Action {
	t.Helper()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(params), &node); err != nil {
		t.Fatal(err)
	}
	a, err := registered.Build(name, &node)
	if err != nil {
		t.Fatalf("build %s %s: %v", name, params, err)
	}
	return a
}

// row is the value of a record's key-value row.
func row(e event.Enrichment, key string) string {
	for _, b := range e.Blocks {
		if b.Table == nil {
			continue
		}
		for _, r := range b.Table.Rows {
			if len(r) == 2 && r[0] == key {
				return r[1]
			}
		}
	}
	return ""
}

func resultRow(e event.Enrichment) string { return row(e, "Result") }

// Read-only is the default: a playbook naming a remediation fails to load
// unless the policy enables it and lists it, and the error says how.
func TestPlaybookValidationFollowsThePolicy(t *testing.T) {
	t.Parallel()
	const pb = `- name: restart-on-crash
  triggers: [{on_prometheus_alert: {alert_name: KubePodCrashLooping}}]
  actions:
    - logs_enricher: {}
    - delete_pod: {}
`
	cases := []struct {
		name   string
		policy actions.Remediation
		err    string
	}{
		{"disabled by default", actions.Remediation{}, `playbook "restart-on-crash": delete_pod changes the cluster and remediation is disabled (medic is read-only by default): set remediation.enabled: true and list delete_pod in remediation.allowed`},
		{"enabled, not allowed", actions.Remediation{Enabled: true, Allowed: []string{"rollout_restart"}}, "delete_pod is not in remediation.allowed"},
		{"enabled and allowed", actions.Remediation{Enabled: true, Allowed: []string{"delete_pod"}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := playbooks.Build([]playbooks.File{{Path: "p.yaml", Data: []byte(pb)}}, playbooks.Options{Plugins: playbooks.Plugins{Triggers: triggers.NewRegistry(prometheus.Register), Actions: registered}, Remediation: tc.policy})
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want %q", err, tc.err)
			case tc.err != "" && !strings.Contains(err.Error(), "p.yaml:5"):
				t.Fatalf("error %v does not name the action's line", err)
			}
		})
	}
}

// The configuration's require_approval wins over a playbook's false, and
// an Env whose policy does not allow the action (a policy changed under a
// running set) runs nothing and says why.
func TestApprovalAndPolicyAtRunTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := event.NewFinding(event.Event{ID: "f1", Labels: map[string]string{"namespace": "shop", "pod": "cart-1"}}, testNow)
	a := buildAction(t, "delete_pod", "{require_approval: false}")
	env := &actions.Env{Remediation: actions.Remediation{Enabled: true, Allowed: []string{"delete_pod"}, RequireApproval: true}}
	if err := a.Run(ctx, env, f); err != nil {
		t.Fatal(err)
	}
	if len(f.Proposed) != 1 || f.Proposed[0].Target != (event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart-1"}) {
		t.Fatalf("proposed %+v", f.Proposed)
	}
	g := event.NewFinding(f.Event, testNow)
	if err := a.Run(ctx, &actions.Env{}, g); err != nil {
		t.Fatal(err)
	}
	if len(g.Proposed) != 0 || len(g.Enrichments) != 1 || !strings.Contains(g.Enrichments[0].Blocks[0].Markdown, "remediation is disabled") {
		t.Fatalf("disabled policy: %+v", g.Enrichments)
	}
}

func TestKubectlCommandParsing(t *testing.T) {
	t.Parallel()
	cases := []struct{ command, err string }{
		{"get pods -n shop", ""},
		{"kubectl describe deploy/cart", ""},
		{"describe", ""},
		{"logs -c app --tail 50", ""},
		{"logs pod/cart-1 --tail=20", ""},
		{"rollout status deployment/cart", ""},
		{"get secrets", `resource "secrets" is not one kubectl_command may read`},
		{"delete pod x", `"delete" is not allowed`},
		{"rollout restart deployment/cart", `only "rollout status"`},
		{"get pods --all-namespaces", "flag --all-namespaces is not supported"},
		{"logs --tail 5000", "not between 1 and 1000"},
		{"rollout status pods/x", "rollout status works on deployments"},
		{"", "command: required"},
	}
	for _, tc := range cases {
		p := "{command: '" + tc.command + "'}"
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(p), &node); err != nil {
			t.Fatal(err)
		}
		_, err := registered.Build("kubectl_command", &node)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.command, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want %q", tc.command, err, tc.err)
		}
	}
}

var testNow = time.Date(2026, 12, 4, 11, 0, 0, 0, time.UTC)
