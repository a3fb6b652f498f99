package app

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/test/kubeapi"
)

const changesPlaybook = `
- name: shop-deployment-changes
  triggers:
    - on_deployment_update: {namespace_prefix: shop}
  actions:
    - report_changes: {}
`

// A change trigger end to end through medic serve: a Deployment updated on
// a real API server (watched with medic's read-only role) becomes one
// event on JetStream, the playbook's report_changes renders the diff, and
// the file sink gets exactly one finding saying what changed; an update of
// a Deployment in another namespace reaches nothing.
func TestChangeTriggerThroughTheBus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and etcd")
	}
	ctx := context.Background()
	c, admin := kubeapi.StartReadOnly(t, "shop", "billing")
	deployments := map[string]*appsv1.Deployment{}
	for _, ns := range []string{"shop", "billing"} {
		replicas := int32(3)
		labels := map[string]string{"app": "api"}
		d, err := admin.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "api"},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "shop/api:1.4.2"}}},
				},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		deployments[ns] = d
	}

	_, cfg, log := runAppOnCluster(t, c, changesPlaybook)

	for _, ns := range []string{"billing", "shop"} {
		d := deployments[ns]
		d.Spec.Template.Spec.Containers[0].Image = "shop/api:1.5.0"
		one := int32(1)
		d.Spec.Replicas = &one
		if _, err := admin.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	path := filepath.Join(cfg.DataDir, "findings.jsonl")
	testkit.Eventually(t, 30*time.Second, "the change's finding in the file sink", func() bool { return len(readKubeFindings(t, path)) > 0 })
	// Let a second (duplicate or out-of-scope) finding arrive if one would.
	time.Sleep(2 * time.Second)
	fs := readKubeFindings(t, path)
	if len(fs) != 1 {
		t.Fatalf("%d findings for one Deployment update in scope, want 1 (lost 0, duplicates 0); log:\n%s", len(fs), log.String())
	}
	f := fs[0]
	if f.Event.Subject.Namespace != "shop" || f.Event.Subject.Name != "api" {
		t.Errorf("the finding is about %+v, want Deployment shop/api", f.Event.Subject)
	}
	var diff string
	for _, e := range f.Enrichments {
		if e.Source == "report_changes" {
			b, _ := json.Marshal(e.Blocks)
			diff = string(b)
		}
	}
	for _, want := range []string{"shop/api:1.4.2", "shop/api:1.5.0", "replicas"} {
		if !strings.Contains(diff, want) {
			t.Errorf("the finding's diff does not say %q: %s", want, diff)
		}
	}
	t.Logf("1 update in scope, 1 out of scope: findings 1, lost 0, duplicates 0; diff: %.300s", diff)
}
