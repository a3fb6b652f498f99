package alertmanager

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/notify/webhook"
	"github.com/prometheus/alertmanager/template"
)

// TestMessageMatchesAlertmanagersType guards the copy of webhook.Message:
// both must put the same JSON on the wire.
func TestMessageMatchesAlertmanagersType(t *testing.T) {
	data := &template.Data{
		Receiver: "medic", Status: "firing",
		Alerts: template.Alerts{{
			Status: "firing", Labels: template.KV{"alertname": "X"}, Annotations: template.KV{"summary": "s"},
			StartsAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), GeneratorURL: "http://p", Fingerprint: "f",
		}},
		GroupLabels: template.KV{"alertname": "X"}, CommonLabels: template.KV{"alertname": "X"},
		CommonAnnotations: template.KV{}, ExternalURL: "http://am",
	}
	theirs, err := json.Marshal(&webhook.Message{Data: data, Version: "4", GroupKey: "{}:{}", TruncatedAlerts: 3})
	if err != nil {
		t.Fatal(err)
	}
	ours, err := json.Marshal(&Message{Data: data, Version: "4", GroupKey: "{}:{}", TruncatedAlerts: 3})
	if err != nil {
		t.Fatal(err)
	}
	if string(theirs) != string(ours) {
		t.Fatalf("wire formats differ:\nalertmanager %s\nmedic        %s", theirs, ours)
	}
	msg, err := Decode(theirs)
	if err != nil {
		t.Fatalf("medic cannot decode Alertmanager's own encoding: %v", err)
	}
	if msg.TruncatedAlerts != 3 || msg.GroupKey != "{}:{}" || len(msg.Alerts) != 1 {
		t.Fatalf("decoded %+v", msg)
	}
}
