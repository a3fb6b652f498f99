package schedule

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/triggers"
)

func TestParamsAreCheckedAtLoad(t *testing.T) {
	t.Parallel()
	tests := []struct{ params, err string }{
		{"fixed_delay_repeat: {repeat: 3, seconds_delay: 60}", ""},
		{"fixed_delay_repeat: {repeat: -1, seconds_delay: 1}", ""},
		{"dynamic_delay_repeat: {delay_periods: [0, 60]}", ""},
		{`cron: "*/5 * * * *"`, ""},
		{`cron: "CRON_TZ=Europe/Paris 0 9 * * 1-5"`, ""},
		{`cron: "@every 90s"`, ""},
		{"fixed_delay_repeat: {repeat: 0, seconds_delay: 60}", "fixed_delay_repeat.repeat"},
		{"fixed_delay_repeat: {repeat: 2, seconds_delay: 0}", "fixed_delay_repeat.seconds_delay"},
		{"dynamic_delay_repeat: {delay_periods: []}", "dynamic_delay_repeat.delay_periods"},
		{"dynamic_delay_repeat: {delay_periods: [60, -1]}", "delay_periods[1]"},
		{`cron: "61 * * * *"`, "cron"},
		{`cron: "* * * *"`, "cron"},
		{"{}", "exactly one"},
		{`{cron: "@hourly", fixed_delay_repeat: {repeat: 1, seconds_delay: 5}}`, "exactly one"},
		{"fixed_delay_repeat: {repeat: 1, seconds_dealy: 5}", "seconds_dealy"},
	}
	for _, tt := range tests {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(tt.params), &node); err != nil {
			t.Fatal(err)
		}
		_, err := triggers.Build(TriggerName, node.Content[0])
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.params, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want one naming %q", tt.params, err, tt.err)
		}
	}
}

// A tick matches its own playbook's trigger only, also when two playbooks
// share a schedule, and nothing but ticks.
func TestMatchIsPerPlaybook(t *testing.T) {
	t.Parallel()
	a := buildTrigger(t, "a", "fixed_delay_repeat: {repeat: -1, seconds_delay: 60}")
	b := buildTrigger(t, "b", "fixed_delay_repeat: {repeat: -1, seconds_delay: 60}")
	due := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	ev := a.Event(1, due, due)
	if !a.Match(&ev) || b.Match(&ev) {
		t.Fatalf("a tick of a matched a=%v b=%v; want true, false", a.Match(&ev), b.Match(&ev))
	}
	if again := a.Event(1, due, due.Add(time.Minute)); again.ID != ev.ID {
		t.Errorf("the same tick published later has another ID (%s, %s): the bus could not drop the double", ev.ID, again.ID)
	}
	if next := a.Event(2, due.Add(time.Minute), due); next.ID == ev.ID {
		t.Error("ticks 1 and 2 share an ID")
	}
	alert := event.Event{Kind: event.KindPrometheusAlert, Labels: ev.Labels}
	if a.Match(&alert) {
		t.Error("an alert carrying the tick's labels matched")
	}
	if ev.Title != "Scheduled run 1 of playbook a" || ev.Kind != event.KindSchedule {
		t.Errorf("event: kind %s, title %q", ev.Kind, ev.Title)
	}
}
