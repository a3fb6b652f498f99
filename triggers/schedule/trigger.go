// Package schedule holds on_schedule, the playbook trigger of runs on a
// timetable (Robusta's fixed_delay_repeat and dynamic_delay_repeat, and a
// cron form): its parameters, when each tick is due, and Match, which
// recognises the ticks the scheduler (sources/schedule) publishes for it.
package schedule

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/scheduleevent"
	"github.com/medichq/medic/triggers"
)

// TriggerName is the playbook trigger of scheduled runs.
const TriggerName = "on_schedule"

// Register adds on_schedule to r.
func Register(r *triggers.Registry) {
	triggers.Add(r, TriggerName,
		"Runs the playbook on a schedule, with no outside input: `fixed_delay_repeat: {repeat, seconds_delay}` "+
			"(repeat -1 runs forever), `dynamic_delay_repeat: {delay_periods: [seconds, …]}` (one run after each period), "+
			"or `cron: \"*/5 * * * *\"` (UTC unless the spec starts with CRON_TZ=). Each run is taken once across replicas "+
			"and restarts (state in the JetStream KV bucket medic_schedules).",
		func() *Params { return &Params{} },
		NewTrigger)
}

// Params are on_schedule's parameters; exactly one form is set.
type Params struct {
	FixedDelayRepeat   *FixedDelayRepeat   `yaml:"fixed_delay_repeat" json:"fixed_delay_repeat,omitempty"`
	DynamicDelayRepeat *DynamicDelayRepeat `yaml:"dynamic_delay_repeat" json:"dynamic_delay_repeat,omitempty"`
	// Cron is a standard 5-field spec ("*/5 * * * *") or a descriptor
	// ("@hourly", "@every 90s"); times are UTC unless it starts with
	// CRON_TZ=<zone>.
	Cron string `yaml:"cron" json:"cron,omitempty"`
}

// FixedDelayRepeat runs Repeat times (-1: forever), SecondsDelay apart,
// the first SecondsDelay after the schedule is first loaded (Robusta's
// semantics).
type FixedDelayRepeat struct {
	Repeat       int `yaml:"repeat" json:"repeat"`
	SecondsDelay int `yaml:"seconds_delay" json:"seconds_delay"`
}

// DynamicDelayRepeat runs once after each period in turn, each measured
// from the run before (the first from when the schedule is first loaded).
type DynamicDelayRepeat struct {
	DelayPeriods []int `yaml:"delay_periods" json:"delay_periods"`
}

// Validate checks the values at load time, naming the field.
func (p *Params) Validate() error {
	set := 0
	if p.FixedDelayRepeat != nil {
		set++
		f := p.FixedDelayRepeat
		if f.Repeat == 0 || f.Repeat < -1 {
			return fmt.Errorf("fixed_delay_repeat.repeat: %d is not a positive count or -1 (forever)", f.Repeat)
		}
		if f.SecondsDelay < 1 {
			return fmt.Errorf("fixed_delay_repeat.seconds_delay: %d must be at least 1", f.SecondsDelay)
		}
	}
	if p.DynamicDelayRepeat != nil {
		set++
		d := p.DynamicDelayRepeat
		if len(d.DelayPeriods) == 0 {
			return errors.New("dynamic_delay_repeat.delay_periods: the list is empty")
		}
		for i, s := range d.DelayPeriods {
			if s < 0 {
				return fmt.Errorf("dynamic_delay_repeat.delay_periods[%d]: %d is negative", i, s)
			}
		}
	}
	if p.Cron != "" {
		set++
		if _, err := cron.ParseStandard(p.Cron); err != nil {
			return fmt.Errorf("cron: %q: %w", p.Cron, err)
		}
	}
	if set != 1 {
		return errors.New("set exactly one of fixed_delay_repeat, dynamic_delay_repeat or cron")
	}
	return nil
}

// Trigger is a built on_schedule trigger. The Scheduler fires it; Match
// recognises its ticks.
type Trigger struct {
	p        Params
	spec     string // canonical JSON of p: part of the key
	cron     cron.Schedule
	playbook string
	key      string
}

// NewTrigger builds the trigger from its parameters.
func NewTrigger(p *Params) (triggers.Trigger, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	spec, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode schedule: %w", err)
	}
	t := &Trigger{p: *p, spec: string(spec)}
	if p.Cron != "" {
		if t.cron, err = cron.ParseStandard(p.Cron); err != nil {
			return nil, fmt.Errorf("cron: %w", err)
		}
	}
	t.key = keyOf("", t.spec)
	return t, nil
}

// BindPlaybook tells the trigger the playbook it belongs to; the playbook
// loader calls it. A tick is one playbook's run: two playbooks with the
// same schedule get their own ticks and findings, as in Robusta, rather
// than sharing one event (and so one finding routed to both's sinks).
func (t *Trigger) BindPlaybook(name string) {
	t.playbook = name
	t.key = keyOf(name, t.spec)
}

// keyOf identifies a schedule: its playbook and its parameters. Changing
// either starts a new series; a reload that keeps both keeps the state.
func keyOf(playbook, spec string) string {
	sum := sha256.Sum256([]byte(playbook + "\x00" + spec))
	return hex.EncodeToString(sum[:12])
}

// Kinds implements triggers.Trigger.
func (t *Trigger) Kinds() []event.Kind { return []event.Kind{event.KindSchedule} }

// Match implements triggers.Trigger: the event is a tick of this schedule.
func (t *Trigger) Match(ev *event.Event) bool {
	return ev.Kind == event.KindSchedule && ev.Labels[scheduleevent.LabelSchedule] == t.key
}

// Key identifies the schedule (playbook and parameters) in the state bucket
// and in its events.
func (t *Trigger) Key() string { return t.key }

// Playbook is the playbook the trigger belongs to.
func (t *Trigger) Playbook() string { return t.playbook }

// String describes the schedule for logs and titles.
func (t *Trigger) String() string {
	switch {
	case t.p.FixedDelayRepeat != nil:
		f := t.p.FixedDelayRepeat
		if f.Repeat < 0 {
			return fmt.Sprintf("every %ds", f.SecondsDelay)
		}
		return fmt.Sprintf("%d times, every %ds", f.Repeat, f.SecondsDelay)
	case t.p.DynamicDelayRepeat != nil:
		parts := make([]string, len(t.p.DynamicDelayRepeat.DelayPeriods))
		for i, s := range t.p.DynamicDelayRepeat.DelayPeriods {
			parts[i] = fmt.Sprintf("%ds", s)
		}
		return "after " + strings.Join(parts, ", ")
	default:
		return "cron " + t.p.Cron
	}
}

// Limit is how many ticks the schedule has in all; -1 for no end.
func (t *Trigger) Limit() int {
	switch {
	case t.p.FixedDelayRepeat != nil:
		return t.p.FixedDelayRepeat.Repeat
	case t.p.DynamicDelayRepeat != nil:
		return len(t.p.DynamicDelayRepeat.DelayPeriods)
	default:
		return -1
	}
}

// Next is when tick runs+1 is due, given that the last tick (or, for the
// first, the schedule's creation) happened at last. A fixed or dynamic
// delay counts from the last run, as Robusta's scheduler does; cron takes
// its next slot after last, so a replica down over several slots fires the
// overdue one once on return, not all of them.
func (t *Trigger) Next(runs int, last time.Time) time.Time {
	switch {
	case t.p.FixedDelayRepeat != nil:
		return last.Add(time.Duration(t.p.FixedDelayRepeat.SecondsDelay) * time.Second)
	case t.p.DynamicDelayRepeat != nil:
		periods := t.p.DynamicDelayRepeat.DelayPeriods
		return last.Add(time.Duration(periods[min(runs, len(periods)-1)]) * time.Second)
	default:
		return t.cron.Next(last.UTC())
	}
}
