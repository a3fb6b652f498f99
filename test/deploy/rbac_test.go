package deploy_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	kubeactions "github.com/medichq/medic/actions/kube"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/kube"
	kubetriggers "github.com/medichq/medic/sources/kubernetes"
	"github.com/medichq/medic/test/deploy"
)

// Every role the chart renders, with every values set, is read-only: get,
// list and watch only, no Secrets, no wildcards, and bound only to medic's
// own ServiceAccount.
func TestRenderedRBACIsReadOnly(t *testing.T) {
	needHelm(t)
	for _, vs := range valuesSets(t) {
		t.Run(vs.Name, func(t *testing.T) {
			_, objs := render(t, vs.Files)
			if len(objs.Of("ClusterRole"))+len(objs.Of("Role")) == 0 {
				t.Fatal("no Role or ClusterRole rendered")
			}
			if p := deploy.CheckRBAC(objs, deploy.Namespace, "medic"); len(p) > 0 {
				t.Fatalf("RBAC is not read-only:\n  %s", strings.Join(p, "\n  "))
			}
		})
	}
}

// The checker itself fails on what it is there to catch.
func TestRBACCheckCatchesSecretsWildcardsAndWrites(t *testing.T) {
	bad := `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: medic-reader}
rules:
  - apiGroups: [""]
    resources: [pods, secrets]
    verbs: [get, list]
  - apiGroups: ["*"]
    resources: [widgets]
    verbs: [get]
  - apiGroups: [apps]
    resources: ["*"]
    verbs: ["*"]
  - apiGroups: [""]
    resources: [pods/exec]
    verbs: [create]
  - nonResourceURLs: [/metrics]
    verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: medic-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: medic, namespace: medic}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: medic-reader, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: medic-reader}
subjects: [{kind: ServiceAccount, name: default, namespace: shop}]
`
	objs := must(deploy.ParseManifests(bad))
	problems := strings.Join(deploy.CheckRBAC(objs, "medic", "medic"), "\n")
	for _, want := range []string{
		`rules[0]: grants [get list] on secrets`,
		`rules[1]: wildcard in apiGroups: "*"`,
		`rules[2]: wildcard verb "*"`,
		`rules[2]: wildcard in resources: "*"`,
		`rules[3]: verb "create" is not read-only`,
		`rules[4]: nonResourceURLs [/metrics]`,
		`ClusterRoleBinding medic-admin: binds ClusterRole cluster-admin, which the chart does not define`,
		`RoleBinding shop/medic-reader: subject map[kind:ServiceAccount name:default namespace:shop] is not the ServiceAccount medic/medic`,
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("CheckRBAC did not report %q; it reported:\n%s", want, problems)
		}
	}
}

// deploy/rbac (plain manifests, applied by hand and by test/kubeapi) and the
// chart's RBAC templates grant exactly the same rules to the same
// ServiceAccount: neither can drift.
func TestChartRBACMatchesDeployRBAC(t *testing.T) {
	needHelm(t)
	root := must(deploy.RepoRoot())
	file := func(name string) deploy.Objects {
		return must(deploy.ParseManifests(string(must(os.ReadFile(filepath.Join(root, "deploy", "rbac", name))))))
	}
	_, cluster := render(t, nil)
	_, namespaced := render(t, nil, "rbac.scope=namespaced", "kubernetes.namespaces[0]=shop")

	compareRules := func(name string, chart, plain *unstructured.Unstructured) {
		t.Helper()
		if chart == nil || plain == nil {
			t.Fatalf("%s: chart %v, deploy/rbac %v", name, chart != nil, plain != nil)
		}
		cr, pr := must(deploy.RulesOf(chart)), must(deploy.RulesOf(plain))
		if !reflect.DeepEqual(cr, pr) {
			t.Errorf("%s: the chart's rules differ from deploy/rbac's:\nchart:       %+v\ndeploy/rbac: %+v", name, cr, pr)
		}
		if chart.GetName() != plain.GetName() {
			t.Errorf("%s: named %q by the chart and %q in deploy/rbac", name, chart.GetName(), plain.GetName())
		}
	}
	compareRules("clusterrole.yaml", cluster.Get("ClusterRole", "medic-reader"), file("clusterrole.yaml").Get("ClusterRole", "medic-reader"))
	compareRules("role.yaml", namespaced.Get("Role", "medic-reader"), file("role.yaml").Get("Role", "medic-reader"))
	compareRules("clusterrole-nodes.yaml", namespaced.Get("ClusterRole", "medic-node-reader"), file("clusterrole-nodes.yaml").Get("ClusterRole", "medic-node-reader"))

	compareBinding := func(name string, chart, plain *unstructured.Unstructured) {
		t.Helper()
		if chart == nil || plain == nil {
			t.Fatalf("%s: chart %v, deploy/rbac %v", name, chart != nil, plain != nil)
		}
		for _, field := range []string{"roleRef", "subjects"} {
			if !reflect.DeepEqual(chart.Object[field], plain.Object[field]) {
				t.Errorf("%s %s: chart %v, deploy/rbac %v", name, field, chart.Object[field], plain.Object[field])
			}
		}
	}
	compareBinding("clusterrole.yaml", cluster.Get("ClusterRoleBinding", "medic-reader"), file("clusterrole.yaml").Get("ClusterRoleBinding", "medic-reader"))
	compareBinding("role.yaml", namespaced.Get("RoleBinding", "medic-reader"), file("role.yaml").Get("RoleBinding", "medic-reader"))
	compareBinding("clusterrole-nodes.yaml", namespaced.Get("ClusterRoleBinding", "medic-node-reader"), file("clusterrole-nodes.yaml").Get("ClusterRoleBinding", "medic-node-reader"))

	sa, plainSA := cluster.Get("ServiceAccount", "medic"), file("serviceaccount.yaml").Get("ServiceAccount", "medic")
	if sa == nil || plainSA == nil || sa.GetNamespace() != plainSA.GetNamespace() {
		t.Errorf("ServiceAccount: chart %v, deploy/rbac %v", sa, plainSA)
	}
	if ns := namespaced.Get("Role", "medic-reader").GetNamespace(); ns != "shop" {
		t.Errorf("the namespaced Role is in %q, want shop", ns)
	}
	if namespaced.Get("ClusterRole", "medic-reader") != nil {
		t.Error("rbac.scope namespaced still renders the cluster-wide ClusterRole")
	}
}

// TestChartGrantsWhatTheCodeCalls: the chart's default roles grant every
// call the evidence actions make (actions/kube.APIAccess, itself checked
// against the calls their tests make) and everything the Kubernetes
// triggers list and watch, and nothing on Secrets (TestRenderedRBACIsReadOnly).
// ServiceAccounts are the one kind resource_yaml knows that the chart
// leaves to rbac.extraRules; resource_yaml then notes "forbidden".
func TestChartGrantsWhatTheCodeCalls(t *testing.T) {
	needHelm(t)
	_, objs := render(t, nil)
	var rules []deploy.Rule
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, u := range objs.Of(kind) {
			rules = append(rules, must(deploy.RulesOf(u))...)
		}
	}
	granted := func(p kube.Permission) bool {
		for _, r := range rules {
			if slices.Contains(r.APIGroups, p.Group) && slices.Contains(r.Resources, p.Resource) && slices.Contains(r.Verbs, p.Verb) {
				return true
			}
		}
		return false
	}
	kinds := []event.Kind{event.KindPodCrashLoop, event.KindPodOOMKilled, event.KindContainerOOMKilled, event.KindImagePullBackoff,
		event.KindPodEvicted, event.KindJobFailure, event.KindNodeNotReady, event.KindKubernetesWarningEvent}
	want := append(kubeactions.APIAccess(), kubetriggers.Permissions(nil, kinds)...)
	for _, p := range want {
		if p.Resource == "serviceaccounts" {
			continue
		}
		if !granted(p) {
			t.Errorf("the chart does not grant %s, which medic calls", p)
		}
	}
}
