package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/event/kubeevent"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/test/kubeapi"
)

// HelmRecord is HelmRecordFixture for tests.
func HelmRecord(_ testing.TB, ns, release string, revision int, status string, at time.Time) *corev1.Secret {
	return HelmRecordFixture(ns, release, revision, status, at)
}

func TestDecodeHelmRelease(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r, err := DecodeHelmRelease(HelmRecord(t, "shop", "web", 3, "failed", at))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "web" || r.Namespace != "shop" || r.Version != 3 || r.Info.Status != "failed" || !r.Info.LastDeployed.Equal(at) ||
		r.ChartRef() != "shop-1.3.0" || r.Chart.Metadata.AppVersion != "2.0.3" || r.Info.Description != `Upgrade "web" failed: context deadline exceeded` {
		t.Errorf("decoded %+v", r)
	}
	bad := HelmRecord(t, "shop", "web", 1, "deployed", at)
	bad.Data["release"] = []byte("not base64!")
	if _, err := DecodeHelmRelease(bad); err == nil {
		t.Error("a broken record decoded")
	}
}

// Helm release records on a real kube-apiserver: an install that goes from
// pending-install to deployed fires deploy once; an upgrade that fails
// fires fail once; a release stuck in pending-upgrade fires unhealthy after
// duration; helm uninstall (the records deleted) fires uninstall.
func TestHelmTriggersOnRealAPIServer(t *testing.T) {
	c := kubeapi.Start(t)
	kc, err := kubernetes.NewForConfig(c.Admin())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mem := &memPublisher{}
	det, err := NewDetector(Options{Kube: kc, Publisher: mem, HelmReleases: true, Logger: newLogger(testLog{t})})
	if err != nil {
		t.Fatal(err)
	}
	det.SetInterest(kubeInterest(t, `
- name: helm
  triggers:
    - on_helm_release_deploy: {namespace_prefix: shop}
    - on_helm_release_fail: {}
    - on_helm_release_uninstall: {}
    - on_helm_release_unhealthy: {duration: 2}
  actions: [{create_finding: {}}]
`))
	if err := det.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer det.Stop()
	if err := det.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	secrets := kc.CoreV1().Secrets("shop")
	write := func(s *corev1.Secret) {
		t.Helper()
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err == nil {
			return
		}
		if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().Truncate(time.Second)
	// helm install: pending-install, then deployed (the same record).
	write(HelmRecord(t, "shop", "web", 1, "pending-install", now))
	write(HelmRecord(t, "shop", "web", 1, "deployed", now))
	// helm upgrade that fails: rev 2 pending-upgrade, then failed.
	write(HelmRecord(t, "shop", "web", 2, "pending-upgrade", now.Add(time.Second)))
	write(HelmRecord(t, "shop", "web", 2, "failed", now.Add(time.Second)))
	// An upgrade of another release that hangs.
	write(HelmRecord(t, "shop", "api", 1, "pending-upgrade", now))

	helmEvents := func(what string) int {
		n := 0
		for _, ev := range mem.of(kubeevent.KindHelmRelease, "") {
			if ev.Labels[kubeevent.LabelHelmEvent] == what {
				n++
			}
		}
		return n
	}
	testkit.Eventually(t, 30*time.Second, "deploy, fail and unhealthy", func() bool {
		return helmEvents(kubeevent.HelmDeploy) >= 1 && helmEvents(kubeevent.HelmFail) >= 1 && helmEvents(kubeevent.HelmUnhealthy) >= 1
	})
	// helm uninstall deletes the release's records.
	for _, rev := range []int{1, 2} {
		if err := secrets.Delete(ctx, fmt.Sprintf("sh.helm.release.v1.web.v%d", rev), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 30*time.Second, "uninstall", func() bool { return helmEvents(kubeevent.HelmUninstall) >= 1 })
	testkit.Eventually(t, 10*time.Second, "the detector to be idle", det.Idle)

	for what, want := range map[string]int{kubeevent.HelmDeploy: 1, kubeevent.HelmFail: 1, kubeevent.HelmUnhealthy: 1, kubeevent.HelmUninstall: 1} {
		if got := helmEvents(what); got != want {
			t.Errorf("%d %s events, want %d", got, what, want)
		}
	}
	for _, ev := range mem.of(kubeevent.KindHelmRelease, "") {
		t.Logf("%s: %s", ev.Labels[kubeevent.LabelHelmEvent], ev.Title)
		if b, _ := json.Marshal(ev); bytes.Contains(b, []byte("not-for-medic")) {
			t.Errorf("a Helm event carries the release's values: %s", b)
		}
	}
	fail := mem.of(kubeevent.KindHelmRelease, "web")
	for _, ev := range fail {
		if ev.Labels[kubeevent.LabelHelmEvent] == kubeevent.HelmFail && ev.Title != "Helm release shop/web failed (revision 2, shop-1.2.0)" {
			t.Errorf("fail title %q", ev.Title)
		}
	}
	if mem.dups != 0 {
		t.Errorf("%d duplicate publishes", mem.dups)
	}
	t.Logf("published %d, duplicates %d", len(mem.all()), mem.dups)
}
