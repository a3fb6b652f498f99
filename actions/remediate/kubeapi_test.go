package remediate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/actions/remediate"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/test/kubeapi"
)

// cluster is a real kube-apiserver with a Deployment (ReplicaSet, pod) in
// namespace shop, a StatefulSet and a node; medic's clients carry the
// ServiceAccount's token, limited to deploy/rbac's read-only role plus, when
// remediation is applied, deploy/rbac/clusterrole-remediation.yaml.
type cluster struct {
	admin kubernetes.Interface
	cfg   *rest.Config
}

func startCluster(t *testing.T, remediation bool) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and etcd")
	}
	roles := []string{"clusterrole.yaml", "clusterrole-nodes.yaml"}
	if remediation {
		roles = append(roles, "clusterrole-remediation.yaml")
	}
	c, admin := kubeapi.StartWithRoles(t, roles)
	ctx := context.Background()
	create := func(err error) {
		t.Helper()
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{})
	create(err)
	labels := map[string]string{"app": "cart"}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shop/cart:1.0"}}}}
	d, err := admin.AppsV1().Deployments("shop").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "cart"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl}}, metav1.CreateOptions{})
	create(err)
	rs, err := admin.AppsV1().ReplicaSets("shop").Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "cart-7d9",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl}}, metav1.CreateOptions{})
	create(err)
	_, err = admin.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cart-7d9-x2k4p", Labels: labels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}}},
		Spec: tmpl.Spec}, metav1.CreateOptions{})
	create(err)
	_, err = admin.AppsV1().StatefulSets("shop").Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "db"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "postgres:17"}}}}}}, metav1.CreateOptions{})
	create(err)
	_, err = admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, metav1.CreateOptions{})
	create(err)
	return &cluster{admin: admin, cfg: c.Medic()}
}

// env is medic's action environment with the ServiceAccount's credentials
// and every remediation allowed.
func (c *cluster) env(t *testing.T, requireApproval bool) *actions.Env {
	return &actions.Env{
		Kube: must(kubernetes.NewForConfig(c.cfg)), Dynamic: must(dynamic.NewForConfig(c.cfg)), RESTConfig: c.cfg,
		Remediation: actions.Remediation{Enabled: true, Allowed: actions.RemediationActions, RequireApproval: requireApproval},
	}
}

// must panics on an error a test cannot go on without (the test fails).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func alertOn(labels map[string]string) *event.Finding {
	return event.NewFinding(event.Event{ID: "f-" + labels["alertname"], Kind: event.KindPrometheusAlert, Labels: labels}, time.Now())
}

// Each action, proposed from a playbook and then executed as an approval
// would, does exactly its API call with medic's remediation role: the pod is
// deleted, the template annotated, the scale changed, the job created once.
// Before approval nothing in the cluster changes.
func TestRemediationsAgainstAPIServer(t *testing.T) {
	c := startCluster(t, true)
	ctx := context.Background()
	env := c.env(t, true)
	x := &remediate.Executor{Env: env}
	pod := map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-7d9-x2k4p", "container": "app"}

	cases := []struct {
		name, action, params string
		labels               map[string]string
		summary              string
		result               string // in the record's Result row
		check                func(t *testing.T)
	}{
		{"rollout restart from the pod's owner", "rollout_restart", "{}", pod,
			"rollout restart deployment shop/cart", "restarted deployment shop/cart", func(t *testing.T) {
				d := must(c.admin.AppsV1().Deployments("shop").Get(ctx, "cart", metav1.GetOptions{}))
				if d.Spec.Template.Annotations[remediate.RestartedAtAnnotation] == "" {
					t.Errorf("no %s on the template: %v", remediate.RestartedAtAnnotation, d.Spec.Template.Annotations)
				}
			}},
		{"scale a statefulset", "scale_workload", "{replicas: 3}", map[string]string{"alertname": "Slow", "namespace": "shop", "statefulset": "db"},
			"scale statefulset shop/db to 3 replicas", "scaled statefulset shop/db to 3 replicas", func(t *testing.T) {
				s := must(c.admin.AppsV1().StatefulSets("shop").Get(ctx, "db", metav1.GetOptions{}))
				if *s.Spec.Replicas != 3 {
					t.Errorf("replicas %d, want 3", *s.Spec.Replicas)
				}
			}},
		{"run a job", "run_job", "{image: busybox:1.37, command: [sh, -c, 'echo cleanup']}", map[string]string{"alertname": "DiskFull", "namespace": "shop"},
			"run job busybox:1.37 sh -c echo cleanup in namespace shop", "created job shop/medic-job-", func(t *testing.T) {
				jobs := must(c.admin.BatchV1().Jobs("shop").List(ctx, metav1.ListOptions{LabelSelector: remediate.ManagedByLabel + "=medic"}))
				if len(jobs.Items) != 1 || *jobs.Items[0].Spec.TTLSecondsAfterFinished != 3600 {
					t.Errorf("jobs: %+v", jobs.Items)
				}
			}},
		{"kubectl get", "kubectl_command", "{command: 'get pods -n shop'}", pod,
			"kubectl get pod -n shop", "done", nil},
		{"kubectl rollout status of the subject", "kubectl_command", "{command: 'rollout status deployment/cart'}", pod,
			"kubectl rollout status deployment cart -n shop", "Waiting for deployment", nil},
		{"delete the pod", "delete_pod", "{}", pod,
			"delete pod shop/cart-7d9-x2k4p", "deleted pod shop/cart-7d9-x2k4p", func(t *testing.T) {
				_, err := c.admin.CoreV1().Pods("shop").Get(ctx, "cart-7d9-x2k4p", metav1.GetOptions{})
				if !apierrors.IsNotFound(err) {
					t.Errorf("the pod is still there: %v", err)
				}
			}},
	}
	for _, tc := range cases { // in order: delete_pod last, the others resolve its owner
		t.Run(tc.name, func(t *testing.T) {
			a := buildAction(t, tc.action, tc.params)
			f := alertOn(tc.labels)
			if err := a.Run(ctx, env, f); err != nil {
				t.Fatal(err)
			}
			if len(f.Proposed) != 1 {
				t.Fatalf("proposed %d actions, want 1; enrichments %+v", len(f.Proposed), f.Enrichments)
			}
			p := f.Proposed[0]
			if p.Summary != tc.summary {
				t.Errorf("summary %q, want %q", p.Summary, tc.summary)
			}
			// Proposing twice (two playbooks) keeps one button.
			if err := a.Run(ctx, env, f); err != nil || len(f.Proposed) != 1 {
				t.Fatalf("proposed again: %d, %v", len(f.Proposed), err)
			}
			for range 2 { // a redelivered approval does the same thing again
				rec, err := x.Execute(ctx, f, p, "<@U1>", time.Date(2026, 12, 4, 11, 0, 0, 0, time.UTC))
				if err != nil {
					t.Fatal(err)
				}
				got := resultRow(rec)
				if !strings.HasPrefix(rec.Title, "✅") || (!strings.HasPrefix(got, tc.result) && !strings.HasPrefix(got, "job shop/medic-job-") && !strings.HasPrefix(got, "pod shop/cart-7d9-x2k4p was already gone")) {
					t.Fatalf("record %q, result %q, want %q…", rec.Title, got, tc.result)
				}
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}

	// A command's output is redacted before it is recorded.
	t.Run("output is redacted", func(t *testing.T) {
		const token = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
		if _, err := c.admin.CoreV1().ConfigMaps("shop").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cart-config"},
			Data: map[string]string{"SLACK_TOKEN": token, "LOG_LEVEL": "debug"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		a := buildAction(t, "kubectl_command", "{command: 'describe configmap/cart-config -n shop'}")
		f := alertOn(map[string]string{"alertname": "ConfigDrift", "namespace": "shop"})
		if err := a.Run(ctx, env, f); err != nil || len(f.Proposed) != 1 {
			t.Fatalf("proposed %d, %v", len(f.Proposed), err)
		}
		rec, err := x.Execute(ctx, f, f.Proposed[0], "<@U1>", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var out string
		for _, b := range rec.Blocks {
			if b.Log != nil {
				out = b.Log.Text
			}
		}
		if !strings.Contains(out, "LOG_LEVEL: debug") || strings.Contains(out, token) {
			t.Fatalf("output not redacted (or missing):\n%s", out)
		}
	})

	// The node debug pod is created on the node and removed afterwards;
	// without a kubelet it never runs, so the record says it did not finish.
	t.Run("node debug pod", func(t *testing.T) {
		a := buildAction(t, "node_bash_enricher", "{bash_command: 'df -h', timeout: 2s, namespace: shop}")
		f := alertOn(map[string]string{"alertname": "NodeDisk", "node": "node-1"})
		if err := a.Run(ctx, env, f); err != nil || len(f.Proposed) != 1 {
			t.Fatalf("proposed %d, %v", len(f.Proposed), err)
		}
		rec, err := x.Execute(ctx, f, f.Proposed[0], "<@U1>", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(rec.Title, "❌") || !strings.Contains(resultRow(rec), "did not finish within 2s") {
			t.Fatalf("record %q: %q", rec.Title, resultRow(rec))
		}
		pods := must(c.admin.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{LabelSelector: remediate.ManagedByLabel + "=medic"}))
		if len(pods.Items) != 0 {
			t.Fatalf("the debug pod was left behind: %v", pods.Items[0].Name)
		}
	})

	// A command in a pod goes as far as the API server allows without a
	// kubelet: the exec request is authorized (the role grants pods/exec)
	// and then fails because the pod runs nowhere.
	t.Run("pod exec is authorized", func(t *testing.T) {
		_, err := c.admin.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "api"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shop/api:1"}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a := buildAction(t, "pod_bash_enricher", "{bash_command: 'cat /etc/resolv.conf', timeout: 10s}")
		f := alertOn(map[string]string{"alertname": "DNS", "namespace": "shop", "pod": "api"})
		if err := a.Run(ctx, env, f); err != nil || len(f.Proposed) != 1 {
			t.Fatalf("proposed %d, %v", len(f.Proposed), err)
		}
		rec, err := x.Execute(ctx, f, f.Proposed[0], "<@U1>", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		got := resultRow(rec)
		if !strings.HasPrefix(rec.Title, "❌") || strings.Contains(got, "forbidden") {
			t.Fatalf("record %q: %q", rec.Title, got)
		}
		t.Logf("exec without a kubelet: %s", got)
	})
}

// With only the read-only role, every write is refused by the API server and
// the record says which permission is missing: the chart's separate role is
// what makes remediation possible, nothing else.
func TestRemediationsForbiddenWithoutTheRole(t *testing.T) {
	c := startCluster(t, false)
	ctx := context.Background()
	env := c.env(t, false)
	f := alertOn(map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-7d9-x2k4p"})
	for _, name := range []string{"delete_pod", "rollout_restart"} {
		a := buildAction(t, name, "{require_approval: false}")
		if err := a.Run(ctx, env, f); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.Proposed) != 0 || len(f.Enrichments) != 2 {
		t.Fatalf("proposed %d, enrichments %d", len(f.Proposed), len(f.Enrichments))
	}
	for _, e := range f.Enrichments {
		if !strings.HasPrefix(e.Title, "❌") || !strings.Contains(resultRow(e), "forbidden") || !strings.HasPrefix(row(e, "Approved"), "automatically") {
			t.Errorf("record %q: %q", e.Title, resultRow(e))
		}
	}
	if _, err := c.admin.CoreV1().Pods("shop").Get(ctx, "cart-7d9-x2k4p", metav1.GetOptions{}); err != nil {
		t.Fatalf("the pod is gone: %v", err)
	}
}
