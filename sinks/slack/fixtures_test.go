package slack

import (
	"fmt"
	"strings"
	"time"

	"github.com/medichq/medic/event"
)

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// alertFinding is a KubePodCrashLooping alert from Alertmanager, as the
// built-in playbooks see it, with default_enricher's enrichment.
func alertFinding(status event.Status) *event.Finding {
	ev := event.Event{
		ID:       "4f1c2a9e0b7d3c5a8e6f1d2c3b4a5968",
		Kind:     event.KindPrometheusAlert,
		Source:   "alertmanager",
		Status:   status,
		Severity: event.SeverityCritical,
		Title:    "Pod shop/cart-7d9 is crash looping",
		Description: "Pod shop/cart-7d9 (app) is in waiting state (reason: \"CrashLoopBackOff\").\n" +
			"See **the runbook** and [the dashboard](https://grafana.example/d/pods?var-pod=cart-7d9&from=now-1h).",
		Labels: map[string]string{
			"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-7d9", "container": "app",
			"severity": "critical", "team": "payments", "job": "kube-state-metrics", "cluster": "prod-eu",
		},
		Annotations: map[string]string{
			"summary":     "Pod is crash looping.",
			"runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
		},
		Subject:      event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart-7d9", Container: "app", Node: "node-a1"},
		StartsAt:     t0,
		Fingerprint:  "5ef77f1f8e5dc3a8",
		GeneratorURL: "http://prometheus.example/graph?g0.expr=rate%28kube_pod_container_status_restarts_total%5B5m%5D%29",
		ExternalURL:  "http://alertmanager.example",
		ReceivedAt:   t0.Add(time.Second),
	}
	if status == event.StatusResolved {
		ev.ID = "9a8b7c6d5e4f30211203f4e5d6c7b8a9"
		ev.EndsAt = t0.Add(14 * time.Minute)
		ev.ReceivedAt = ev.EndsAt.Add(time.Second)
	}
	f := event.NewFinding(ev, ev.ReceivedAt)
	f.Playbooks = []string{"builtin-crashloop"}
	f.Add(event.Enrichment{Title: "Alert labels", Source: "default_enricher", Blocks: []event.Block{
		event.KeyValueBlock(sortedLabels(ev.Labels)),
		event.LinksBlock(
			event.Link{Label: "Graph", URL: ev.GeneratorURL},
			event.Link{Label: "Runbook", URL: ev.Annotations["runbook_url"]},
			event.Link{Label: "Grafana", URL: "https://grafana.example/d/pods?var-pod=cart-7d9"},
		),
	}})
	return f
}

func sortedLabels(m map[string]string) [][2]string {
	keys := []string{"alertname"}
	for _, k := range []string{"cluster", "container", "job", "namespace", "pod", "severity", "team"} {
		if _, ok := m[k]; ok {
			keys = append(keys, k)
		}
	}
	out := make([][2]string, len(keys))
	for i, k := range keys {
		out[i] = [2]string{k, m[k]}
	}
	return out
}

// withEnrichments returns the alert finding with es added.
func withEnrichments(es ...event.Enrichment) *event.Finding {
	f := alertFinding(event.StatusFiring)
	f.Enrichments = append(f.Enrichments, es...)
	return f
}

func logLines(n int, prefix string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "2025-03-14T09:%02d:%02dZ %s line %d: connection to db-primary:5432 refused\n", (i/60)%60, i%60, prefix, i)
	}
	return b.String()
}
