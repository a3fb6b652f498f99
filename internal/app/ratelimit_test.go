package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/medichq/medic/event/kubeevent"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks/file/filetest"
	"github.com/medichq/medic/test/kubeapi"
)

// crashAlerts is an Alertmanager webhook with one firing
// KubePodCrashLooping alert per pod, all in namespace ns.
func crashAlerts(ns string, pods ...string) string {
	alerts := make([]string, len(pods))
	for i, p := range pods {
		alerts[i] = fmt.Sprintf(`{"status":"firing","labels":{"alertname":"KubePodCrashLooping","namespace":%q,"pod":%q},
"annotations":{},"startsAt":"2026-12-04T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"fp-%s-%s"}`, ns, p, ns, p)
	}
	return `{"version":"4","groupKey":"{}","status":"firing","receiver":"medic","groupLabels":{},"commonLabels":{},
"commonAnnotations":{},"externalURL":"http://alertmanager:9093","alerts":[` + strings.Join(alerts, ",") + `]}`
}

func postAlerts(t *testing.T, a *App, body string) (accepted, duplicates int) {
	t.Helper()
	resp, err := http.Post("http://"+a.Addr()+"/api/alerts", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %s: %s", resp.Status, b)
	}
	var r struct{ Accepted, Duplicates int }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("webhook answer %s: %v", b, err)
	}
	return r.Accepted, r.Duplicates
}

// TestAlertRateLimitThroughTheBus: 20 alerts of one alertname and namespace
// under on_prometheus_alert's rate_limit: 10m, through the webhook, the bus
// and the engine, give one finding in the file sink and 19 counted skips;
// after a restart the window still holds (the claims are in JetStream KV),
// and another namespace has its own.
func TestAlertRateLimitThroughTheBus(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	cfg := kubeTestConfig(t) // the file sink, no cluster
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "limited.yaml"), []byte(`
- name: crashloop
  triggers:
    - on_prometheus_alert: {alert_name: KubePodCrashLooping, rate_limit: 10m}
  actions: [{create_finding: {}}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Playbooks.Dirs = []string{dir}
	cfg.Playbooks.Builtin = false
	path := filepath.Join(cfg.DataDir, "findings.jsonl")

	start := func() *App {
		t.Helper()
		a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Shutdown(context.Background()) }) // a second Shutdown is a no-op
		return a
	}
	stop := func(a *App) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	}
	// handled waits until the engine ran or skipped n events.
	handled := func(a *App, n float64) {
		t.Helper()
		testkit.Eventually(t, 30*time.Second, fmt.Sprintf("%v events handled", n), func() bool {
			return counter(t, a, "medic_playbook_runs_total", nil)+counter(t, a, "medic_trigger_rate_limited_total", nil) >= n
		})
	}

	pods := make([]string, 20)
	for i := range pods {
		pods[i] = fmt.Sprint("cart-", i)
	}
	a := start()
	if acc, dup := postAlerts(t, a, crashAlerts("shop", pods...)); acc != 20 || dup != 0 {
		t.Fatalf("accepted %d, duplicates %d; want 20, 0", acc, dup)
	}
	handled(a, 20)
	runs := counter(t, a, "medic_playbook_runs_total", nil)
	limited := counter(t, a, "medic_trigger_rate_limited_total", map[string]string{"trigger": "on_prometheus_alert"})
	if runs != 1 || limited != 19 {
		t.Fatalf("playbook runs %v, rate-limited %v; want 1 and 19", runs, limited)
	}
	stop(a)

	a = start()
	if acc, _ := postAlerts(t, a, crashAlerts("shop", "cart-after-restart")); acc != 1 {
		t.Fatalf("accepted %d after the restart, want 1", acc)
	}
	if acc, _ := postAlerts(t, a, crashAlerts("billing", "invoice-0")); acc != 1 {
		t.Fatalf("accepted %d in billing, want 1", acc)
	}
	handled(a, 2)
	if got := counter(t, a, "medic_trigger_rate_limited_total", nil); got != 1 {
		t.Errorf("after the restart: rate-limited %v, want 1 (the window survives the restart)", got)
	}
	// The engine's run stores billing's finding; the file sink's consumer
	// writes it a moment later. Stopping before then would leave it in the
	// findings stream for the next start (not lost), but this test reads the
	// file, so it waits for the write (a loaded machine once stopped first).
	testkit.Eventually(t, 30*time.Second, "billing's finding in the file sink", func() bool {
		for _, f := range filetest.FindingsSoFar(t, path) {
			if f.Event.Labels["namespace"] == "billing" {
				return true
			}
		}
		return false
	})
	stop(a)
	findings := map[string]int{} // by namespace
	ids := map[string]int{}
	for _, r := range filetest.Read(t, path) {
		findings[r.Finding.Event.Labels["namespace"]]++
		ids[r.Finding.ID]++
	}
	if want := map[string]int{"shop": 1, "billing": 1}; fmt.Sprint(findings) != fmt.Sprint(want) {
		t.Errorf("findings in the file sink by namespace %v, want %v", findings, want)
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("finding %s delivered %d times", id, n)
		}
	}
}

// TestKubernetesRateLimitThroughTheBus: on a real API server (watched with
// medic's read-only role), two pods of one Deployment crash loop and one of
// them restarts again: three occurrences, each published once on
// JetStream; on_pod_crash_loop's rate_limit, applied by the engine per the
// Deployment the detector named on the events, gives one finding in the
// file sink and two counted skips, none lost or duplicated.
func TestKubernetesRateLimitThroughTheBus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and etcd")
	}
	ctx := context.Background()
	c, admin := kubeapi.StartReadOnly(t, "shop")
	labels := map[string]string{"app": "cart"}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "shop/cart:1"}}},
	}
	d, err := admin.AppsV1().Deployments("shop").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "cart"},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// No controller manager runs: the ReplicaSet is made by hand.
	rs, err := admin.AppsV1().ReplicaSets("shop").Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-7d9f", Labels: labels, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	a, cfg, log := runAppOnCluster(t, c, `
- name: crashloop
  triggers:
    - on_pod_crash_loop: {rate_limit: 1h}
  actions: [{create_finding: {}}]
`)
	det := a.KubeDetector()

	// crash writes, as a kubelet would, the pod's container waiting in
	// CrashLoopBackOff after restarts restarts.
	pods := map[string]*corev1.Pod{}
	crash := func(name string, restarts int32) {
		t.Helper()
		p, ok := pods[name]
		if !ok {
			p, err = admin.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}}},
				Spec: tmpl.Spec,
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: "app", Image: "shop/cart:1", RestartCount: restarts,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				Reason: "Error", ExitCode: 1, FinishedAt: metav1.Now()}},
		}}
		if pods[name], err = admin.CoreV1().Pods("shop").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// One occurrence at a time: the engine's workers handle events
	// concurrently, so two crashes published together could be handled in
	// either order, and which pod's finding is the one notified would be
	// chance.
	handled := func(n int64) func() bool {
		return func() bool {
			return det.Published() == n &&
				counter(t, a, "medic_playbook_runs_total", nil)+counter(t, a, "medic_trigger_rate_limited_total", nil) == float64(n)
		}
	}
	crash("cart-7d9f-abcde", 3)
	testkit.Eventually(t, 30*time.Second, "the first pod's occurrence handled", handled(1))
	crash("cart-7d9f-xyz12", 3)
	testkit.Eventually(t, 30*time.Second, "the second pod's occurrence handled", handled(2))
	crash("cart-7d9f-abcde", 4)
	testkit.Eventually(t, 30*time.Second, "the third occurrence handled", handled(3))
	runs := counter(t, a, "medic_playbook_runs_total", nil)
	limited := counter(t, a, "medic_trigger_rate_limited_total", map[string]string{"trigger": "on_pod_crash_loop"})
	if runs != 1 || limited != 2 {
		t.Fatalf("playbook runs %v, rate-limited %v; want 1 and 2; log:\n%s", runs, limited, log.String())
	}
	path := filepath.Join(cfg.DataDir, "findings.jsonl")
	testkit.Eventually(t, 30*time.Second, "the finding in the file sink", func() bool { return len(readKubeFindings(t, path)) > 0 })
	sdctx, sdcancel := context.WithTimeout(ctx, 15*time.Second)
	defer sdcancel()
	if err := a.Shutdown(sdctx); err != nil { // every delivery done: a late duplicate would be in the file
		t.Fatalf("shutdown: %v", err)
	}
	records := filetest.Read(t, path)
	if len(records) != 1 {
		t.Fatalf("%d findings in the file sink, want 1 (lost 0, duplicates 0)", len(records))
	}
	f := records[0].Finding
	if got := f.Event.Labels[kubeevent.LabelRateLimitSubject]; got != "shop/Deployment/cart" || f.Event.Subject.Name != "cart-7d9f-abcde" {
		t.Errorf("the finding is about %s (rate-limit subject %q), want cart-7d9f-abcde of shop/Deployment/cart", f.Event.Subject.Name, got)
	}
	t.Logf("3 occurrences published, 3 handled: findings 1, rate-limited %v, lost 0, duplicates 0", limited)
}
