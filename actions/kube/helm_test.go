package kube

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
	"github.com/medichq/medic/sinks/stdout"
	kubetrig "github.com/medichq/medic/sources/kubernetes"
)

// A failed upgrade: the release's history from its records, newest first;
// another release's records and other Secrets stay out, and so do values.
func TestHelmStatusEnricherGolden(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := newCluster(t,
		kubetrig.HelmRecordFixture("shop", "web", 1, "superseded", at.Add(-48*time.Hour)),
		kubetrig.HelmRecordFixture("shop", "web", 2, "deployed", at.Add(-24*time.Hour)),
		kubetrig.HelmRecordFixture("shop", "web", 3, "failed", at),
		kubetrig.HelmRecordFixture("shop", "api", 1, "deployed", at),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop", Labels: map[string]string{"name": "web"}}, Data: map[string][]byte{"password": []byte("x")}},
	)
	ev := &event.Event{
		ID: "helm-1", Kind: kubeevent.KindHelmRelease, Source: kubeevent.Source, Status: event.StatusFiring, Severity: event.SeverityWarning,
		Title:       "Helm release shop/web failed (revision 3, shop-1.3.0)",
		Description: `Upgrade "web" failed: context deadline exceeded`,
		Labels:      map[string]string{"namespace": "shop", "release": "web", "revision": "3", "helm_event": "fail"},
		Subject:     event.Subject{Kind: "HelmRelease", Namespace: "shop", Name: "web"},
		StartsAt:    at, ReceivedAt: at,
	}
	f := runActions(t, c.env(), ev, [2]string{"helm_status_enricher", "{revisions: 2}"})
	e := enrichment(t, f, "helm_status_enricher")
	if rows := e.Blocks[0].Table.Rows; len(rows) != 2 || rows[0][0] != "3" || rows[1][0] != "2" {
		t.Errorf("rows %v, want revisions 3 and 2", rows)
	}
	b, _ := json.Marshal(f)
	if strings.Contains(string(b), "not-for-medic") {
		t.Error("the finding carries the release's values")
	}
	var buf bytes.Buffer
	if err := stdout.Render(&buf, f, false); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "helm_status_enricher", buf.Bytes())

	// Without a release to look up, a note says so.
	other := *ev
	other.Subject, other.Labels = event.Subject{Kind: "Pod", Namespace: "shop", Name: "x"}, nil
	f = runActions(t, c.env(), &other, [2]string{"helm_status_enricher", ""})
	if n := noteOf(t, enrichment(t, f, "helm_status_enricher")); !strings.Contains(n, "no Helm release") {
		t.Errorf("note %q", n)
	}
}
