package kube

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/medichq/medic/sinks/stdout"
)

// rolloutFixture is Deployment shop/api with three revisions: 1.4.1 two
// hours before at, 1.4.2 thirty minutes before, 1.5.0 with a lower memory
// limit four minutes before; and a ReplicaSet of another Deployment.
func rolloutFixture(at time.Time) (*appsv1.Deployment, []appsv1.ReplicaSet) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop", UID: "uid-api"}, Spec: appsv1.DeploymentSpec{Selector: sel}}
	rs := func(rev int, image, mem string, ago time.Duration, owner types.UID) appsv1.ReplicaSet {
		c := corev1.Container{Name: "api", Image: image}
		if mem != "" {
			c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(mem)}
		}
		hash := "h" + strconv.Itoa(rev)
		return appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{
				Name: "api-" + hash, Namespace: "shop", CreationTimestamp: metav1.NewTime(at.Add(-ago)),
				Labels:          map[string]string{"app": "api", "pod-template-hash": hash},
				Annotations:     map[string]string{revisionAnnotation: strconv.Itoa(rev)},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "api", UID: owner, Controller: ptr(true)}},
			},
			Spec: appsv1.ReplicaSetSpec{Selector: sel, Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "api", "pod-template-hash": hash}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{c}},
			}},
		}
	}
	return d, []appsv1.ReplicaSet{
		rs(1, "api:1.4.1", "512Mi", 2*time.Hour, "uid-api"),
		rs(2, "api:1.4.2", "512Mi", 30*time.Minute, "uid-api"),
		rs(3, "api:1.5.0", "256Mi", 4*time.Minute, "uid-api"),
		rs(9, "api:9", "", time.Minute, "uid-other"),
	}
}

func TestDeploymentRollouts(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d, rss := rolloutFixture(at)
	tests := []struct {
		window time.Duration
		max    int
		want   []string
	}{
		{time.Hour, 3, []string{
			"Deployment shop/api changed 4m before the event (revision 2 → 3): containers[api].image: api:1.4.2 → api:1.5.0; containers[api].resources.limits.memory: 512Mi → 256Mi",
			"Deployment shop/api changed 30m before the event (revision 1 → 2): containers[api].image: api:1.4.1 → api:1.4.2",
		}},
		{20 * time.Minute, 3, []string{"Deployment shop/api changed 4m before the event (revision 2 → 3): containers[api].image: api:1.4.2 → api:1.5.0; containers[api].resources.limits.memory: 512Mi → 256Mi"}},
		{time.Hour, 1, []string{"Deployment shop/api changed 4m before the event (revision 2 → 3): containers[api].image: api:1.4.2 → api:1.5.0; containers[api].resources.limits.memory: 512Mi → 256Mi"}},
		{time.Minute, 3, nil},
	}
	for _, tt := range tests {
		got := DeploymentRollouts(d, rss, at, "the event", tt.window, tt.max)
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("window %s max %d:\n got %q\nwant %q", tt.window, tt.max, got, tt.want)
		}
	}
}

// An alert about a pod of the Deployment: the finding says what changed
// shortly before it.
func TestRecentChangesEnricherGolden(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d, rss := rolloutFixture(at)
	c := newCluster(t, append(objects(rss), d)...)
	ev := alertEvent("KubeDeploymentReplicasMismatch", map[string]string{"namespace": "shop", "deployment": "api", "severity": "warning"})
	ev.StartsAt = at
	f := runActions(t, c.env(), ev, [2]string{"recent_changes_enricher", "{window: 1h, max_changes: 2}"})
	if n := len(enrichment(t, f, "recent_changes_enricher").Blocks); n != 2 {
		t.Fatalf("%d rollouts shown, want 2", n)
	}
	var buf bytes.Buffer
	if err := stdout.Render(&buf, f, false); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "recent_changes_enricher", buf.Bytes())

	// Nothing changed within the window: no enrichment, no note.
	ev.StartsAt = at.Add(3 * time.Hour)
	f = runActions(t, c.env(), ev, [2]string{"recent_changes_enricher", ""})
	for _, e := range f.Enrichments {
		if e.Source == "recent_changes_enricher" {
			t.Errorf("an old rollout was reported: %+v", e)
		}
	}
}
