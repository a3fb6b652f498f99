package pipeline

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
)

const silenceWatchdog = `- name: noise
  triggers: [on_prometheus_alert]
  actions:
    - name_silencer: {names: [Watchdog]}
`

func TestEvaluate(t *testing.T) {
	t.Parallel()
	e := &Evaluate{Engine: newEngine(t, silenceWatchdog), Redactor: newRedactor(t)}
	const key = "AKIAABCDEFGHIJKLMNOP"
	other := alert("KubePodCrashLooping", "cart", event.StatusFiring, nil)
	other.Kind = "test.unmatched"
	tests := []struct {
		name       string
		ev         *event.Event
		wantNil    bool
		silenced   bool
		wantSource string // the last enrichment's source; "" when no note is added
	}{
		{"no playbook matches: no finding", other, true, false, ""},
		{"matched: a finding, nothing to say", alert("KubePodCrashLooping", "cart", event.StatusFiring, nil), false, false, ""},
		{"silenced: said as evidence", alert("Watchdog", "none", event.StatusFiring, nil), false, true, SilencedSource},
		{"secret in an annotation: redacted, and said", alert("KubePodCrashLooping", "cart", event.StatusFiring,
			map[string]string{"description": "aws " + key}), false, false, RedactionSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.Evaluate(context.Background(), tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if f := res.Finding; (f == nil) != tt.wantNil {
				t.Fatalf("finding %v, want nil: %v", f, tt.wantNil)
			}
			if tt.wantNil {
				return
			}
			f := res.Finding
			if (f.Silenced != nil) != tt.silenced {
				t.Errorf("silenced %+v, want %v", f.Silenced, tt.silenced)
			}
			var sources []string
			for _, en := range f.Enrichments {
				sources = append(sources, en.Source)
			}
			last := sources[len(sources)-1]
			switch {
			case tt.wantSource != "" && last != tt.wantSource:
				t.Errorf("enrichment sources %v, want %q last", sources, tt.wantSource)
			case tt.wantSource == "" && (last == SilencedSource || last == RedactionSource):
				t.Errorf("enrichment sources %v: a note nobody asked for", sources)
			}
			data, err := json.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(data), key) {
				t.Errorf("the finding still holds the secret: %s", data)
			}
		})
	}
}

// A delivery that is not an event is dead-lettered at once: it will not
// decode on a retry either.
func TestDecodeRefusesWhatIsNotAnEvent(t *testing.T) {
	t.Parallel()
	_, err := Decode(&bus.Delivery{Subject: "medic.events.x", Data: []byte("{not json")})
	if err == nil || !bus.IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent error", err)
	}
	ev := alert("KubePodCrashLooping", "cart", event.StatusFiring, nil)
	got, err := Decode(eventDelivery(t, ev, 1))
	if err != nil || got.ID != ev.ID {
		t.Fatalf("Decode = %v, %v; want event %s", got, err, ev.ID)
	}
}
