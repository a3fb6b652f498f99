package deploy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/test/deploy"
	"github.com/medichq/medic/test/toolbin"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the pod runtime of TestMedicRunsInThePodTheChartDescribes
	// (see podruntime_test.go): re-executed with this variable, it sets up
	// the pod's filesystem and becomes medic.
	if os.Getenv(podRuntimeEnv) != "" {
		podRuntimeMain()
		return
	}
	code := m.Run()
	toolbin.RemoveMedic()
	os.Exit(code)
}

// needHelm skips in -short mode when helm is not built yet (building it
// takes about two minutes); otherwise it builds helm when missing.
func needHelm(t *testing.T) {
	t.Helper()
	if testing.Short() && !deploy.HelmBuilt() {
		t.Skip("helm is not built (test/tools/build-helm.sh); -short does not build it")
	}
	if _, err := deploy.Helm(); err != nil {
		t.Fatal(err)
	}
}

func render(t *testing.T, files []string, sets ...string) (string, deploy.Objects) {
	t.Helper()
	out, err := deploy.Template(files, sets...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := deploy.ParseManifests(out)
	if err != nil {
		t.Fatalf("parse the rendered chart: %v\n%s", err, out)
	}
	return out, objs
}

func valuesSets(t *testing.T) []deploy.ValuesSet {
	t.Helper()
	sets, err := deploy.ValuesSets()
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) < 4 {
		t.Fatalf("expected the defaults and at least three example values files, got %v", sets)
	}
	return sets
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// `helm lint --strict` accepts the chart with its defaults and with every
// example values file.
func TestHelmLint(t *testing.T) {
	needHelm(t)
	chart := must(deploy.ChartDir())
	for _, vs := range valuesSets(t) {
		t.Run(vs.Name, func(t *testing.T) {
			args := []string{"lint", chart, "--strict", "--namespace", deploy.Namespace}
			for _, f := range vs.Files {
				args = append(args, "--values", f)
			}
			out, err := deploy.RunHelm(args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") || strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
				t.Fatalf("helm lint:\n%s", out)
			}
		})
	}
}

// `helm template` with each values set renders exactly the golden file in
// testdata/golden (go test ./test/deploy -run Golden -update rewrites them).
func TestHelmTemplateGolden(t *testing.T) {
	needHelm(t)
	for _, vs := range valuesSets(t) {
		t.Run(vs.Name, func(t *testing.T) {
			out, objs := render(t, vs.Files)
			if len(objs) < 6 {
				t.Fatalf("only %d objects rendered:\n%s", len(objs), out)
			}
			golden := filepath.Join("testdata", "golden", vs.Name+".yaml")
			testkit.Golden(t, golden, []byte(out))
		})
	}
}

// deploy/manifests/medic.yaml is the chart rendered with its defaults
// (make manifests); make manifests-check and this test fail when it is stale.
func TestManifestsUpToDate(t *testing.T) {
	needHelm(t)
	want, err := deploy.RenderManifests()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(must(deploy.ManifestsFile()))
	if err != nil {
		t.Fatalf("%v (run make manifests)", err)
	}
	if string(got) != want {
		t.Fatalf("deploy/manifests/medic.yaml is stale: run make manifests\n%s", testkit.FirstDiff(string(got), want))
	}
	objs := must(deploy.ParseManifests(want))
	if ns := objs.Get("Namespace", deploy.Namespace); ns == nil {
		t.Error("deploy/manifests/medic.yaml does not create the namespace it installs into")
	}
	for _, u := range objs {
		if u.GetKind() != "Namespace" && u.GetKind() != "ClusterRole" && u.GetKind() != "ClusterRoleBinding" && u.GetNamespace() != deploy.Namespace {
			t.Errorf("%s: namespace %q, want %q", deploy.Describe(u), u.GetNamespace(), deploy.Namespace)
		}
	}
}

// The chart refuses values that would break its promises, with a message
// naming the value.
func TestChartRefusesUnsafeValues(t *testing.T) {
	needHelm(t)
	cases := []struct {
		sets []string
		want string
	}{
		{[]string{"replicas=2"}, "replicas: embedded NATS"},
		{[]string{"nats.streamReplicas=3"}, "nats.streamReplicas: embedded NATS is a single server"},
		{[]string{"nats.url=nats://nats.nats.svc:4222", "nats.streamReplicas=7"}, "nats.streamReplicas: 7 is not between 1 and 5"},
		{[]string{"rbac.extraRules[0].apiGroups[0]=", "rbac.extraRules[0].resources[0]=secrets", "rbac.extraRules[0].verbs[0]=get"}, "medic never reads Secrets"},
		{[]string{"rbac.extraRules[0].apiGroups[0]=example.com", "rbac.extraRules[0].resources[0]=widgets", "rbac.extraRules[0].verbs[0]=*"}, "is refused: medic's role is read-only"},
		{[]string{"rbac.extraRules[0].apiGroups[0]=*", "rbac.extraRules[0].resources[0]=widgets", "rbac.extraRules[0].verbs[0]=list"}, "wildcards are refused"},
		{[]string{"rbac.extraRules[0].apiGroups[0]=apps", "rbac.extraRules[0].resources[0]=deployments", "rbac.extraRules[0].verbs[0]=patch"}, "is refused: medic's role is read-only"},
		{[]string{"config.webhook.bearer_token=s3cr3t-token"}, "config.webhook.bearer_token: a secret must not go in `config`"},
		{[]string{"config.sinks[0].name=x", "config.sinks[0].type=teams", "config.sinks[0].webhook_url=https://example.com/x"}, "a secret must not go in `config`"},
		{[]string{"ai.apiKey.secretKeyRef.name=openai"}, "ai.apiKey: a secret is a string or {secretKeyRef"},
		{[]string{"rbac.scope=namespaced"}, "list the namespaces medic reads in kubernetes.namespaces"},
		{[]string{"knowledgeBase.store=weaviate"}, "knowledgeBase.weaviate.url: required"},
		{[]string{"webhookSources.argocd.bearerToken=t"}, "webhookSources.argocd: set a preset"},
		{[]string{"webhookSources.argocd.preset=argocd"}, "webhookSources.argocd: set bearerToken, username and password, or hmacSecret"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.sets, ","), func(t *testing.T) {
			out, err := deploy.Template(nil, c.sets...)
			if err == nil {
				t.Fatalf("rendered without complaint:\n%s", out)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error does not say %q:\n%v", c.want, err)
			}
		})
	}
}

// NOTES.txt prints the Alertmanager receiver for this release: the
// Service's URL and, with a bearer token, where Alertmanager reads it.
func TestNotesPrintAlertmanagerReceiver(t *testing.T) {
	needHelm(t)
	notes := func(t *testing.T, sets ...string) string { return renderNotes(t, deploy.Namespace, nil, sets...) }
	plain := notes(t)
	for _, want := range []string{
		"receivers:\n  - name: medic\n    webhook_configs:\n      - url: http://medic.medic.svc:8080/api/alerts\n        send_resolved: true",
		"kubectl -n medic rollout status deployment/medic",
		"webhook.bearerToken is not set",
	} {
		if !strings.Contains(plain, want) {
			t.Errorf("NOTES lacks %q:\n%s", want, plain)
		}
	}
	if strings.Contains(plain, "http_config") {
		t.Errorf("NOTES shows http_config without a token:\n%s", plain)
	}
	withRef := notes(t, "webhook.bearerToken.secretKeyRef.name=am-token", "webhook.bearerToken.secretKeyRef.key=token")
	if !strings.Contains(withRef, "credentials_file: /etc/alertmanager/secrets/am-token/token") {
		t.Errorf("NOTES with a token reference:\n%s", withRef)
	}
	withValue := notes(t, "webhook.bearerToken=abcdef123456", "service.port=9000")
	if !strings.Contains(withValue, "credentials_file: /etc/alertmanager/secrets/medic/webhook-bearer-token") ||
		!strings.Contains(withValue, "url: http://medic.medic.svc:9000/api/alerts") || strings.Contains(withValue, "abcdef123456") {
		t.Errorf("NOTES with a token value:\n%s", withValue)
	}
}

// renderNotes renders NOTES.txt: helm template does not, and helm install
// --dry-run needs a cluster, so a copy of the chart renders it as a
// ConfigMap.
func renderNotes(t *testing.T, namespace string, files []string, sets ...string) string {
	t.Helper()
	dir := copyChart(t)
	raw := must(os.ReadFile(filepath.Join(dir, "templates", "NOTES.txt")))
	tpl := "{{- define \"medic.notesTest\" }}" + string(raw) + "{{- end }}"
	writeFile(t, filepath.Join(dir, "templates", "_notes_test.tpl"), tpl)
	writeFile(t, filepath.Join(dir, "templates", "notes-test.yaml"),
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes-test}\ndata:\n  notes: {{ include \"medic.notesTest\" . | toJson }}\n")
	args := []string{"template", deploy.Release, dir, "--namespace", namespace}
	for _, f := range files {
		args = append(args, "--values", f)
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	out, err := deploy.RunHelm(args...)
	if err != nil {
		t.Fatal(err)
	}
	cm := must(deploy.ParseManifests(out)).Get("ConfigMap", "notes-test")
	s, _, _ := unstructured.NestedString(cm.Object, "data", "notes")
	return s
}

func copyChart(t *testing.T) string {
	t.Helper()
	src := must(deploy.ChartDir())
	dst := filepath.Join(t.TempDir(), "medic")
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestNetworkPolicyAdmitsAlertmanagerNotEveryone: enabled, the policy
// admits medic's port from Alertmanager's pods (and only from the peers
// the values name), never from anywhere: every rule has peers.
func TestNetworkPolicyAdmitsAlertmanagerNotEveryone(t *testing.T) {
	needHelm(t)
	for _, tc := range []struct {
		name  string
		sets  []string
		rules int
	}{
		{"defaults", []string{"networkPolicy.enabled=true"}, 1},
		{"ingress controller and Prometheus", []string{"networkPolicy.enabled=true",
			"networkPolicy.ingressController[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=ingress-nginx",
			"networkPolicy.metrics[0].podSelector.matchLabels.app=prometheus"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, objs := render(t, nil, tc.sets...)
			nps := objs.Of("NetworkPolicy")
			if len(nps) != 1 {
				t.Fatalf("%d NetworkPolicies", len(nps))
			}
			var np networkingv1.NetworkPolicy
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(nps[0].Object, &np); err != nil {
				t.Fatal(err)
			}
			if len(np.Spec.Ingress) != tc.rules {
				t.Fatalf("%d ingress rules, want %d: %+v", len(np.Spec.Ingress), tc.rules, np.Spec.Ingress)
			}
			for i, r := range np.Spec.Ingress {
				if len(r.From) == 0 {
					t.Errorf("rule %d admits every peer", i)
				}
			}
			am := np.Spec.Ingress[0].From[0]
			if am.PodSelector == nil || am.PodSelector.MatchLabels["app.kubernetes.io/name"] != "alertmanager" || am.NamespaceSelector == nil {
				t.Errorf("the first rule does not select Alertmanager's pods in any namespace: %+v", am)
			}
		})
	}
}
