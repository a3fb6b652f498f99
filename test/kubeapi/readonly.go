package kubeapi

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// StartReadOnly starts a cluster with medic's service account and its
// cluster-wide read-only role from deploy/rbac (serviceaccount.yaml,
// clusterrole.yaml) and the given namespaces, and returns it with an
// administrator's clientset for the test's own objects. Medic() then has
// exactly the permissions the chart's default install grants.
func StartReadOnly(t testing.TB, namespaces ...string) (*Cluster, kubernetes.Interface) {
	t.Helper()
	return StartWithRoles(t, []string{"clusterrole.yaml"}, namespaces...)
}

// StartWithRoles is StartReadOnly with other roles of deploy/rbac bound to
// medic's service account ("clusterrole.yaml", "clusterrole-nodes.yaml",
// "clusterrole-remediation.yaml"), as a chart install with those options
// grants them.
func StartWithRoles(t testing.TB, roles []string, namespaces ...string) (*Cluster, kubernetes.Interface) {
	t.Helper()
	c := Start(t)
	ctx := context.Background()
	admin, err := kubernetes.NewForConfig(c.Admin())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append([]string{"serviceaccount.yaml"}, roles...) {
		path, err := RBACFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := Apply(ctx, admin, "", path); err != nil {
			t.Fatalf("kubeapi: apply %s: %v", f, err)
		}
	}
	for _, ns := range namespaces {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return c, admin
}
