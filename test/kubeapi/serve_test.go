package kubeapi_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/app"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks/file/filetest"
	"github.com/medichq/medic/test/kubeapi"
)

// `medic serve` given a kubeconfig with medic's ServiceAccount credentials
// (bound by deploy/rbac) against a real API server: it says Kubernetes is
// on, finds nothing missing for its built-in playbooks, and turns a pod that
// starts crash looping into one finding.
func TestServeWithKubeconfigAgainstRealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and etcd")
	}
	c, admin := kubeapi.StartReadOnly(t)
	ctx := context.Background()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := c.WriteKubeconfig(kubeconfig, kubeapi.MedicUser); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBECONFIG", kubeconfig) // the standard variable
	cfg, err := config.Load("", []string{"MEDIC_DATA_DIR=" + dir, "MEDIC_HTTP_ADDR=127.0.0.1:0", "MEDIC_PLAYBOOKS_DIRS="})
	if err != nil {
		t.Fatal(err)
	}
	specs, err := config.DefaultSinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sinks = specs[1:]
	logs := &testkit.SyncBuffer{}
	a, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = a.Shutdown(sctx)
		if t.Failed() {
			t.Logf("medic's log:\n%s", logs.String())
		}
	})
	if !strings.Contains(logs.String(), "Kubernetes triggers and actions are on") {
		t.Fatalf("no notice that Kubernetes is on:\n%s", logs.String())
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.KubeDetector().WaitForSync(sctx); err != nil {
		t.Fatalf("medic's watches with its RBAC: %v", err)
	}

	sample := must(kubeapi.LoadPodYAML("crashloopbackoff/gitops-engine__pod-crashloop.yaml", time.Now()))
	sample.Namespace = "default"
	(&admin2{kc: admin, ctx: ctx}).pod(sample)

	path := filepath.Join(dir, "findings.jsonl")
	testkit.Eventually(t, 30*time.Second, "the finding", func() bool { return len(filetest.FindingsSoFar(t, path)) == 1 })
	f := filetest.FindingsSoFar(t, path)[0]
	if f.Event.Kind != event.KindPodCrashLoop || f.Event.Subject.Name != "my-pod" || !strings.Contains(strings.Join(f.Playbooks, ","), "builtin-pod-crash-loop") {
		t.Errorf("finding: kind %s subject %+v playbooks %v", f.Event.Kind, f.Event.Subject, f.Playbooks)
	}
	if strings.Contains(logs.String(), "lack permissions") || strings.Contains(logs.String(), "may not list/watch") {
		t.Errorf("medic reports missing permissions with deploy/rbac:\n%s", logs.String())
	}
}

type admin2 struct {
	kc  kubernetes.Interface
	ctx context.Context
}

func (a *admin2) pod(sample *corev1.Pod) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: sample.Name, Namespace: sample.Namespace, Labels: sample.Labels}}
	for _, c := range sample.Spec.Containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c.Name, Image: c.Image})
	}
	created := must(a.kc.CoreV1().Pods(p.Namespace).Create(a.ctx, p, metav1.CreateOptions{}))
	created.Status = sample.Status
	must(a.kc.CoreV1().Pods(p.Namespace).UpdateStatus(a.ctx, created, metav1.UpdateOptions{}))
}
