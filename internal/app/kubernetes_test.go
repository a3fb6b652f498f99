package app

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/internal/testkit"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event"
	_ "github.com/medichq/medic/internal/plugins"
	"github.com/medichq/medic/sinks/file/filetest"
	"github.com/medichq/medic/test/kubeapi"
)

func kubeTestConfig(t testing.TB) config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Bus.StoreDir = filepath.Join(dir, "jetstream")
	cfg.Playbooks.Dirs = nil
	cfg.Playbooks.ReloadInterval = 0
	specs, err := config.DefaultSinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sinks = specs[1:] // the file sink
	return cfg
}

// runAppOnCluster runs medic serve with playbookYAML as its only playbooks,
// the file sink and medic's read-only credentials on the real API server c,
// and waits until the detector's informers have synced.
func runAppOnCluster(t *testing.T, c *kubeapi.Cluster, playbookYAML string) (*App, config.Config, *testkit.SyncBuffer) {
	t.Helper()
	cfg := kubeTestConfig(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "playbooks.yaml"), []byte(playbookYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Playbooks.Dirs = []string{dir}
	cfg.Playbooks.Builtin = false
	cfg.Kubernetes.Kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := c.WriteKubeconfig(cfg.Kubernetes.Kubeconfig, kubeapi.MedicUser); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := &testkit.SyncBuffer{}
	a := runApp(t, cfg, log)
	det := a.KubeDetector()
	if det == nil {
		t.Fatalf("no detector; log:\n%s", log.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := det.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	return a, cfg, log
}

func runApp(t *testing.T, cfg config.Config, log io.Writer, opts ...Option) *App {
	t.Helper()
	return runAppLogger(t, cfg, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo})), opts...)
}

// runAppLogger is runApp with a logger of the test's choosing.
func runAppLogger(t *testing.T, cfg config.Config, logger *slog.Logger, opts ...Option) *App {
	t.Helper()
	ctx := context.Background()
	a, err := New(ctx, cfg, logger, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return a
}

func TestServeWithoutClusterSaysKubernetesIsOff(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	log := &testkit.SyncBuffer{}
	a := runApp(t, kubeTestConfig(t), log)
	if a.KubeDetector() != nil {
		t.Error("a detector without a cluster")
	}
	out := log.String()
	if n := strings.Count(out, "Kubernetes triggers and actions are off"); n != 1 {
		t.Fatalf("the off notice appears %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "KUBECONFIG") {
		t.Errorf("the notice does not say how to turn Kubernetes on:\n%s", out)
	}
}

func readKubeFindings(t *testing.T, path string) []event.Finding {
	t.Helper()
	return filetest.FindingsSoFar(t, path)
}

// A pod that starts crash looping becomes one finding through the built-in
// playbook, end to end: informer → detector → JetStream → engine → sink.
func TestCrashLoopingPodBecomesOneFinding(t *testing.T) {
	kc := fake.NewClientset()
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	cfg := kubeTestConfig(t)
	log := &testkit.SyncBuffer{}
	a := runApp(t, cfg, log, WithKubeClients(kc, dyn))
	det := a.KubeDetector()
	if det == nil {
		t.Fatal("no detector with clients")
	}
	ctx := context.Background()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := det.WaitForSync(sctx); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-7d9", Namespace: "shop", UID: "uid-cart"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shop/cart:1"}}},
	}
	created, err := kc.CoreV1().Pods("shop").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, restarts := range []int32{3, 4} {
		created.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: "app", Image: "shop/cart:1", RestartCount: restarts,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				Reason: "Error", ExitCode: 1, FinishedAt: metav1.Now()}},
		}}
		if created, err = kc.CoreV1().Pods("shop").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(cfg.DataDir, "findings.jsonl")
	deadline := time.Now().Add(30 * time.Second)
	for len(readKubeFindings(t, path)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no finding; log:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	fs := readKubeFindings(t, path)
	f := fs[0]
	if f.Event.Kind != event.KindPodCrashLoop || f.Event.Subject.Name != "cart-7d9" || len(f.Playbooks) == 0 || f.Playbooks[0] != "builtin-pod-crash-loop" {
		t.Errorf("finding: kind %s subject %+v playbooks %v", f.Event.Kind, f.Event.Subject, f.Playbooks)
	}
	if !strings.Contains(f.Title, "Pod shop/cart-7d9 container app is crash looping") {
		t.Errorf("title %q", f.Title)
	}
	// The detector publishes each restart it sees (3, and 4 unless the
	// informer folded the two writes into one); the built-in playbook's
	// rate limit lets the engine run it once.
	runs := func() float64 {
		return counter(t, a, "medic_playbook_runs_total", map[string]string{"playbook": "builtin-pod-crash-loop"})
	}
	testkit.Eventually(t, 10*time.Second, "every published occurrence handled", func() bool {
		n := float64(det.Published())
		return det.Idle() && n >= 1 &&
			runs()+counter(t, a, "medic_trigger_rate_limited_total", map[string]string{"trigger": "on_pod_crash_loop"}) == n
	})
	if runs := runs(); runs != 1 {
		t.Errorf("%v playbook runs for one crash-looping pod (%d occurrences published), want 1 (rate limit)", runs, det.Published())
	}
	if n := len(readKubeFindings(t, path)); n != 1 {
		t.Errorf("%d findings, want 1", n)
	}
}

// The detector follows the playbook set it serves: a reload that adds a
// node trigger starts the node watch as soon as the reload applies (the
// store hands every applied set on; nothing polls it).
func TestDetectorFollowsPlaybookReloads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(playbooks string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "playbooks.yaml"), []byte(playbooks), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const pods = "- name: pods\n  triggers: [{on_pod_crash_loop: {}}]\n  actions: [{pod_status_enricher: {}}]\n"
	const nodes = "- name: nodes\n  triggers: [{on_node_not_ready: {}}]\n  actions: [{node_status_enricher: {}}]\n"
	write(pods)
	cfg := kubeTestConfig(t)
	cfg.Playbooks.Builtin = false
	cfg.Playbooks.Dirs = []string{dir}
	a := runApp(t, cfg, io.Discard, WithKubeClients(fake.NewClientset(), dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())))
	det := a.KubeDetector()
	if !det.Watching("pods") || det.Watching("nodes") {
		t.Fatalf("at start: watching pods %v, nodes %v; want pods only", det.Watching("pods"), det.Watching("nodes"))
	}
	write(pods + nodes)
	if applied, err := a.Reload(context.Background()); err != nil || !applied {
		t.Fatalf("reload: applied %v, %v", applied, err)
	}
	testkit.Eventually(t, 10*time.Second, "the node watch after the reload that added a node trigger", func() bool {
		return det.Watching("nodes")
	})
}
