package agent_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/agent"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/test/realam"
)

// TestActiveAlertsFromARealAlertmanager: active_alerts reads a real
// Alertmanager's API v2: the alerts firing now, by namespace or matcher,
// never one of a denied namespace.
func TestActiveAlertsFromARealAlertmanager(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Alertmanager")
	}
	am := realam.Start(t, "http://127.0.0.1:9/unused")
	ctx := context.Background()
	now := time.Now()
	for _, l := range []map[string]string{
		{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-7d9", "severity": "warning"},
		{"alertname": "KubeNodeMemoryPressure", "namespace": "shop", "node": "worker-3", "severity": "critical"},
		{"alertname": "CoreDNSDown", "namespace": "kube-system", "severity": "critical"},
	} {
		if err := am.PostAlert(ctx, l, map[string]string{"summary": l["alertname"] + " fires"}, now.Add(-time.Minute), now.Add(time.Hour), ""); err != nil {
			t.Fatal(err)
		}
	}
	tools, err := agent.Toolbox{Actions: builtinActions, Alertmanager: &agent.Alertmanager{URL: am.URL()}, Policy: agent.NamespacePolicy{Deny: []string{"kube-*"}}}.Tools(event.Event{})
	if err != nil {
		t.Fatal(err)
	}
	var alerts agent.Tool
	for _, tl := range tools {
		if tl.Spec().Name == "active_alerts" {
			alerts = tl
		}
	}
	if alerts == nil {
		t.Fatal("no active_alerts tool with alertmanager.url set")
	}
	cases := []struct {
		args          string
		want, notWant []string
		wantErr       string
	}{
		{`{}`, []string{"KubePodCrashLooping", "KubeNodeMemoryPressure", "node=worker-3"}, []string{"CoreDNSDown"}, ""},
		{`{"matchers": ["severity=critical"]}`, []string{"KubeNodeMemoryPressure"}, []string{"KubePodCrashLooping", "CoreDNSDown"}, ""},
		{`{"namespace": "kube-system"}`, nil, nil, `namespace "kube-system" is not open`},
		{`{"namespace": "other"}`, []string{"No active alerts match."}, nil, ""},
	}
	for _, c := range cases {
		out, err := alerts.Call(ctx, json.RawMessage(c.args))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: error %v, want %q", c.args, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.args, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s lacks %q:\n%s", c.args, w, out)
			}
		}
		for _, w := range c.notWant {
			if strings.Contains(out, w) {
				t.Errorf("%s shows %q:\n%s", c.args, w, out)
			}
		}
	}
}
