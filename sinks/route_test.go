package sinks_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/params"
	"github.com/medichq/medic/sinks"
)

// at is a time in UTC, written the way the test reads it.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse("2006-01-02 15:04 MST", s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func finding(status event.Status, sev event.Severity, ns string, labels map[string]string) *event.Finding {
	return &event.Finding{ID: "f", Severity: sev, Event: event.Event{
		Status: status, Subject: event.Subject{Namespace: ns}, Labels: labels,
	}}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	// Berlin moves from CET (UTC+1) to CEST (UTC+2) on Sunday 2026-03-29 and
	// back on Sunday 2026-10-25: office hours must follow the wall clock.
	specs := decodeSpecs(t, `
- name: team-payments
  type: stdout
  stop: true
  scope:
    include:
      - labels: "team=payments"
- name: office
  type: stdout
  activity:
    timezone: Europe/Berlin
    intervals:
      - days: [mon, tue, wed, thu, fri]
        hours: [{start: "08:00", end: "18:00"}]
- name: quiet-nights
  type: stdout
  send_resolved: false
  mute_intervals:
    - timezone: Europe/Berlin
      days: [mon, tue, wed, thu, fri, sat, sun]
      hours: [{start: "00:00", end: "06:00"}]
    - start_date: "2026-12-24"
      end_date: "2026-12-26"
      timezone: Europe/Berlin
- name: catch-all
  type: stdout
  scope:
    exclude:
      - severity: [info, none]
`)
	weekday := "2026-03-04 10:00 UTC" // a Wednesday, 11:00 in Berlin
	tests := []struct {
		name    string
		f       *event.Finding
		now     string
		targets []string
		skipped []sinks.Skip
	}{
		{"every sink in hours", finding(event.StatusFiring, event.SeverityHigh, "shop", nil), weekday,
			[]string{"office", "quiet-nights", "catch-all"}, nil},
		{"scope miss is not a skip", finding(event.StatusFiring, event.SeverityInfo, "shop", nil), weekday,
			[]string{"office", "quiet-nights"}, nil},
		{"stop: sinks after the matching one are skipped", finding(event.StatusFiring, event.SeverityHigh, "shop", map[string]string{"team": "payments"}), weekday,
			[]string{"team-payments"}, []sinks.Skip{{"office", sinks.SkipStopped}, {"quiet-nights", sinks.SkipStopped}, {"catch-all", sinks.SkipStopped}}},
		{"send_resolved: false skips the resolve only there", finding(event.StatusResolved, event.SeverityHigh, "shop", nil), weekday,
			[]string{"office", "catch-all"}, []sinks.Skip{{"quiet-nights", sinks.SkipResolved}}},
		{"stop holds for a resolve too", finding(event.StatusResolved, event.SeverityHigh, "shop", map[string]string{"team": "payments"}), weekday,
			[]string{"team-payments"}, []sinks.Skip{{"office", sinks.SkipStopped}, {"quiet-nights", sinks.SkipStopped}, {"catch-all", sinks.SkipStopped}}},
		{"weekend: office inactive", finding(event.StatusFiring, event.SeverityHigh, "shop", nil), "2026-03-07 10:00 UTC",
			[]string{"quiet-nights", "catch-all"}, []sinks.Skip{{"office", sinks.SkipInactive}}},
		{"end of the range is exclusive", finding(event.StatusFiring, event.SeverityHigh, "shop", nil), "2026-03-04 17:00 UTC",
			[]string{"quiet-nights", "catch-all"}, []sinks.Skip{{"office", sinks.SkipInactive}}},
		{"CET: 07:30 UTC is 08:30 in Berlin", finding(event.StatusFiring, event.SeverityHigh, "shop", nil), "2026-03-27 07:30 UTC",
			[]string{"office", "quiet-nights", "catch-all"}, nil},
		{"CEST: 06:30 UTC is 08:30 in Berlin", finding(event.StatusFiring, event.SeverityHigh, "shop", nil), "2026-03-30 06:30 UTC",
			[]string{"office", "quiet-nights", "catch-all"}, nil},
		{"CEST: 05:30 UTC is 07:30 in Berlin", finding(event.StatusFiring, event.SeverityHigh, "shop", nil), "2026-03-30 05:30 UTC",
			[]string{"quiet-nights", "catch-all"}, []sinks.Skip{{"office", sinks.SkipInactive}}},
		{"CEST: 16:30 UTC is 18:30 in Berlin", finding(event.StatusFiring, event.SeverityHigh, "shop", nil), "2026-03-30 16:30 UTC",
			[]string{"quiet-nights", "catch-all"}, []sinks.Skip{{"office", sinks.SkipInactive}}},
		{"back to CET: 16:30 UTC is 17:30 in Berlin", finding(event.StatusFiring, event.SeverityHigh, "shop", nil), "2026-10-26 16:30 UTC",
			[]string{"office", "quiet-nights", "catch-all"}, nil},
		{"muted at night, Berlin time (CEST)", finding(event.StatusFiring, event.SeverityHigh, "shop", nil), "2026-06-10 03:59 UTC",
			[]string{"catch-all"}, []sinks.Skip{{"office", sinks.SkipInactive}, {"quiet-nights", sinks.SkipMuted}}},
		{"not muted after 06:00 Berlin", finding(event.StatusFiring, event.SeverityHigh, "shop", nil), "2026-06-10 04:00 UTC",
			[]string{"quiet-nights", "catch-all"}, []sinks.Skip{{"office", sinks.SkipInactive}}},
		{"muted over a date range", finding(event.StatusFiring, event.SeverityHigh, "shop", nil), "2026-12-24 12:00 UTC",
			[]string{"office", "catch-all"}, []sinks.Skip{{"quiet-nights", sinks.SkipMuted}}},
		{"the end date is muted all day", finding(event.StatusFiring, event.SeverityHigh, "shop", nil), "2026-12-26 22:59 UTC",
			[]string{"catch-all"}, []sinks.Skip{{"office", sinks.SkipInactive}, {"quiet-nights", sinks.SkipMuted}}},
		{"after the date range (a Sunday)", finding(event.StatusFiring, event.SeverityHigh, "shop", nil), "2026-12-27 07:00 UTC",
			[]string{"quiet-nights", "catch-all"}, []sinks.Skip{{"office", sinks.SkipInactive}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := sinks.Decide(specs, tt.f, nil, at(t, tt.now))
			if !slices.Equal(d.Targets, tt.targets) {
				t.Errorf("targets = %v, want %v", d.Targets, tt.targets)
			}
			if !slices.Equal(d.Skipped, tt.skipped) {
				t.Errorf("skipped = %v, want %v", d.Skipped, tt.skipped)
			}
		})
	}
}

func TestDecideStopNeedsTheSinkToTakeIt(t *testing.T) {
	t.Parallel()
	specs := decodeSpecs(t, `
- name: day-team
  type: stdout
  stop: true
  activity:
    intervals: [{days: [mon, tue, wed, thu, fri], hours: [{start: "09:00", end: "17:00"}]}]
- name: night
  type: stdout
`)
	f := finding(event.StatusFiring, event.SeverityHigh, "shop", nil)
	// In hours the day team takes it and stops the routing; out of hours
	// it does not take it, so it must not stop it either.
	if d := sinks.Decide(specs, f, nil, at(t, "2026-03-04 10:00 UTC")); !slices.Equal(d.Targets, []string{"day-team"}) {
		t.Errorf("in hours: targets = %v, want [day-team]", d.Targets)
	}
	if d := sinks.Decide(specs, f, nil, at(t, "2026-03-04 20:00 UTC")); !slices.Equal(d.Targets, []string{"night"}) {
		t.Errorf("out of hours: targets = %v, want [night]", d.Targets)
	}
	// Requested sinks follow the same rules, in configuration order.
	d := sinks.Decide(specs, f, []string{"night", "day-team", "ghost"}, at(t, "2026-03-04 10:00 UTC"))
	if !slices.Equal(d.Targets, []string{"day-team"}) || !slices.Equal(d.Unknown, []string{"ghost"}) ||
		!slices.Equal(d.Skipped, []sinks.Skip{{"night", sinks.SkipStopped}}) {
		t.Errorf("requested: %+v, want day-team only, night stopped, ghost unknown", d)
	}
}

func TestRoutingKeyDefaults(t *testing.T) {
	t.Parallel()
	s := decodeSpecs(t, "- {name: a, type: stdout}\n")[0]
	if !s.SendResolved || s.Stop || s.Activity != nil || s.MuteIntervals != nil {
		t.Errorf("defaults = send_resolved %v stop %v activity %v mute %v, want true false nil nil", s.SendResolved, s.Stop, s.Activity, s.MuteIntervals)
	}
	if !s.Activity.Active(time.Now()) {
		t.Error("a sink without activity must always be active")
	}
}

func TestRoutingKeyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc string
		line      int
		msg       string
	}{
		{"bad zone", "- name: a\n  type: stdout\n  activity:\n    timezone: Mars/Olympus\n    intervals: [{days: [mon]}]\n", 4, `activity.timezone: "Mars/Olympus" is not an IANA time zone`},
		{"no intervals", "- name: a\n  type: stdout\n  activity: {timezone: UTC}\n", 3, "activity.intervals: required"},
		{"bad day", "- name: a\n  type: stdout\n  activity:\n    intervals:\n      - days: [mon, someday]\n", 4, `activity.intervals[0].days: "someday" is not a day`},
		{"no days", "- name: a\n  type: stdout\n  activity:\n    intervals:\n      - hours: [{start: '08:00', end: '09:00'}]\n", 4, "activity.intervals[0].days: required"},
		{"bad hour", "- name: a\n  type: stdout\n  activity:\n    intervals:\n      - days: [mon]\n        hours: [{start: '8am', end: '09:00'}]\n", 4, `activity.intervals[0].hours[0].start: "8am" is not a time of day`},
		{"end before start", "- name: a\n  type: stdout\n  activity:\n    intervals:\n      - days: [mon]\n        hours: [{start: '22:00', end: '06:00'}]\n", 4, "hours[0]: end 06:00 is not after start 22:00"},
		{"unknown activity key", "- name: a\n  type: stdout\n  activity:\n    timezone: UTC\n    interval: []\n", 5, `unknown parameter "interval"`},
		{"mute: bad date", "- name: a\n  type: stdout\n  mute_intervals:\n    - {start_date: '2026-12-24', end_date: '2026-12-25'}\n    - {start_date: 'Christmas', end_date: '2026-12-26'}\n", 5, `mute_intervals[1].start_date: "Christmas" is not a date`},
		{"mute: half a range", "- name: a\n  type: stdout\n  mute_intervals:\n    - {start_date: '2026-12-24'}\n", 4, "start_date and end_date are both required"},
		{"mute: dates and days", "- name: a\n  type: stdout\n  mute_intervals:\n    - {start_date: '2026-12-24', end_date: '2026-12-25', days: [mon]}\n", 4, "not both"},
		{"mute: reversed range", "- name: a\n  type: stdout\n  mute_intervals:\n    - {start_date: '2026-12-24 10:00', end_date: '2026-12-24 09:00'}\n", 4, "is not after start_date"},
		{"mute: empty", "- name: a\n  type: stdout\n  mute_intervals:\n    - {timezone: UTC}\n", 4, "set start_date and end_date, or days"},
		{"send_resolved not a bool", "- name: a\n  type: stdout\n  send_resolved: sometimes\n", 3, "send_resolved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var specs []sinks.Spec
			err := yaml.Unmarshal([]byte(tt.doc), &specs)
			var pe *params.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error = %v (%T), want a *params.Error", err, err)
			}
			if pe.Line != tt.line || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("error = %q, want line %d and a message containing %q", err, tt.line, tt.msg)
			}
		})
	}
}
