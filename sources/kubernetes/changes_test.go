package kubernetes

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/test/kubeapi"
)

func obj(t *testing.T, v runtime.Object) map[string]any {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(v)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func deployment(image string, replicas int32, env ...corev1.EnvVar) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop", Labels: map[string]string{"app": "api"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "api"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "api", Image: image, Env: env},
					{Name: "proxy", Image: "envoy:1.30"},
				}},
			},
		},
	}
}

func TestDiffObjects(t *testing.T) {
	t.Parallel()
	secret := func(data map[string]string, ann map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop", Annotations: ann}, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	many := func(n int) *corev1.ConfigMap {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{}}
		for i := range 30 {
			cm.Data[strings.Repeat("k", i+1)] = strings.Repeat("v", n)
		}
		return cm
	}
	tests := []struct {
		name     string
		old, cur runtime.Object
		secret   bool
		want     string
	}{
		{"image and replicas", deployment("api:1.4.2", 3), deployment("api:1.5.0", 1), false,
			"replicas: 3 → 1; containers[api].image: api:1.4.2 → api:1.5.0"},
		{"env by name", deployment("api:1", 1, corev1.EnvVar{Name: "LOG_LEVEL", Value: "info"}),
			deployment("api:1", 1, corev1.EnvVar{Name: "LOG_LEVEL", Value: "debug"}, corev1.EnvVar{Name: "TRACE", Value: "1"}), false,
			`containers[api].env[LOG_LEVEL].value: info → debug; containers[api].env[TRACE] added: {"name":"TRACE","value":"1"}`},
		{"secret keys, never values", secret(map[string]string{"password": "hunter2", "user": "app"}, map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"password":"aHVudGVyMg=="}}`}),
			secret(map[string]string{"password": "s3cret!", "token": "t0k"}, map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"password":"czNjcmV0IQ=="}}`}), true,
			"data.password changed; data.token added; data.user removed"},
		{"dotted label keys are quoted", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Labels: map[string]string{"app.kubernetes.io/version": "1"}}},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Labels: map[string]string{"app.kubernetes.io/version": "2"}}}, false,
			`metadata.labels["app.kubernetes.io/version"]: 1 → 2`},
		{"bounded", many(1), many(500), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cs := diffObjects(obj(t, tt.old), obj(t, tt.cur), tt.secret)
			if tt.want == "" { // the bound
				if len(cs) != MaxChanges || cs[MaxChanges-1].String() != "and 11 more" {
					t.Fatalf("%d changes, last %q", len(cs), cs[len(cs)-1])
				}
				for _, c := range cs[:MaxChanges-1] {
					if len([]rune(c.New)) > MaxChangeValue {
						t.Errorf("value of %d characters kept", len([]rune(c.New)))
					}
				}
				if got := kubeevent.SummarizeChanges(cs); !strings.HasSuffix(got, "and 26 more") {
					t.Errorf("summary %q", got)
				}
				return
			}
			var got []string
			for _, c := range cs {
				got = append(got, c.String())
			}
			if s := strings.Join(got, "; "); s != tt.want {
				t.Errorf("diff\n got %s\nwant %s", s, tt.want)
			}
			if tt.secret {
				b, _ := json.Marshal(cs)
				for _, v := range []string{"hunter2", "s3cret", "t0k", "aHVudGVyMg", "czNjcmV0IQ", "YXBw"} {
					if strings.Contains(string(b), v) {
						t.Errorf("the diff of a Secret holds a value: %s", b)
					}
				}
			}
		})
	}
}

// The change triggers against a real kube-apiserver: a Deployment's image
// and replica change is one event that says what changed; a Secret's
// change names keys, never values; every event is published once.
func TestChangeTriggersOnRealAPIServer(t *testing.T) {
	c := kubeapi.Start(t)
	kc, err := kubernetes.NewForConfig(c.Admin())
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(c.Admin())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mem := &memPublisher{}
	det, err := NewDetector(Options{Kube: kc, Dynamic: dc, Publisher: mem, Logger: newLogger(testLog{t})})
	if err != nil {
		t.Fatal(err)
	}
	det.SetInterest(kubeInterest(t, `
- name: rollouts
  triggers: [{on_deployment_update: {namespace_prefix: shop}}]
  actions: [{create_finding: {}}]
- name: secrets
  triggers: [{on_secret_all_changes: {name_prefix: db}}]
  actions: [{create_finding: {}}]
- name: replicas-only
  triggers: [{on_kubernetes_resource_operation: {resources: [deployment], operations: [update], fields_to_monitor: [spec.replicas]}}]
  actions: [{create_finding: {}}]
`))
	if err := det.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer det.Stop()
	if err := det.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}

	d, err := kc.AppsV1().Deployments("shop").Create(ctx, deployment("api:1.4.2", 3), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].Image = "api:1.5.0"
	d.Spec.Replicas = ptr.To[int32](1)
	if d, err = kc.AppsV1().Deployments("shop").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A change of the proxy image only: the replicas-only trigger stays out.
	d.Spec.Template.Spec.Containers[1].Image = "envoy:1.31"
	if _, err = kc.AppsV1().Deployments("shop").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := kc.CoreV1().Secrets("shop").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Data: map[string][]byte{"password": []byte("hunter2")}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Data = map[string][]byte{"password": []byte("s3cret!"), "user": []byte("app")}
	if _, err = kc.CoreV1().Secrets("shop").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	testkit.Eventually(t, 30*time.Second, "2 deployment updates and a secret's create and update", func() bool {
		return len(mem.of(event.KindKubernetesResource, "api")) >= 2 && len(mem.of(event.KindKubernetesResource, "db")) >= 2
	})
	testkit.Eventually(t, 10*time.Second, "the detector to be idle", det.Idle)

	deps := mem.of(event.KindKubernetesResource, "api")
	if len(deps) != 2 {
		t.Fatalf("%d deployment events, want 2 (the create has no trigger)", len(deps))
	}
	first := deps[0]
	if first.Labels[kubeevent.LabelOperation] != kubeevent.OpUpdate || first.Description != "replicas: 3 → 1; containers[api].image: api:1.4.2 → api:1.5.0" {
		t.Errorf("first update: operation %q description %q", first.Labels[kubeevent.LabelOperation], first.Description)
	}
	if deps[1].Description != "containers[proxy].image: envoy:1.30 → envoy:1.31" {
		t.Errorf("second update: %q", deps[1].Description)
	}
	trs := kubeTriggers(t, `- {name: r, triggers: [{on_kubernetes_resource_operation: {resources: [deployment], operations: [update], fields_to_monitor: [spec.replicas]}}], actions: [{create_finding: {}}]}`)
	if !trs[0].Match(&first) || trs[0].Match(&deps[1]) {
		t.Error("fields_to_monitor: spec.replicas must match the replica change only")
	}

	secrets := mem.of(event.KindKubernetesResource, "db")
	if len(secrets) != 2 || secrets[0].Labels[kubeevent.LabelOperation] != kubeevent.OpCreate || secrets[1].Labels[kubeevent.LabelOperation] != kubeevent.OpUpdate {
		t.Fatalf("secret events: %d", len(secrets))
	}
	if got := secrets[1].Description; got != "data.password changed; data.user added" {
		t.Errorf("secret update: %q", got)
	}
	for _, ev := range secrets {
		b, _ := json.Marshal(ev)
		for _, v := range []string{"hunter2", "s3cret", "aHVudGVyMg", "czNjcmV0IQ", "YXBw"} {
			if strings.Contains(string(b), v) {
				t.Errorf("a Secret's event holds a value (%s): %s", v, b)
			}
		}
	}
	if mem.dups != 0 {
		t.Errorf("%d duplicate publishes", mem.dups)
	}
	t.Logf("published %d, duplicates %d", len(mem.all()), mem.dups)
}
