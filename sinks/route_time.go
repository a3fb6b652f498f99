package sinks

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // activity and mute_intervals name zones; the image may have no zoneinfo

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/params"
)

// Activity is when a sink is active (Robusta's activity): outside every
// interval the sink gets nothing.
//
//	activity:
//	  timezone: Europe/Berlin          # default UTC
//	  intervals:
//	    - days: [mon, tue, wed, thu, fri]
//	      hours: [{start: "08:00", end: "18:00"}]   # no hours: the whole day
type Activity struct {
	Timezone  string           `yaml:"timezone"`
	Intervals []WeeklyInterval `yaml:"intervals"`

	loc *time.Location
}

// WeeklyInterval is some days of the week and, optionally, hours on them.
type WeeklyInterval struct {
	Days  []string    `yaml:"days"`
	Hours []HourRange `yaml:"hours"`

	days [7]bool
}

// HourRange is [start, end) on one day, "HH:MM"; end may be "24:00".
type HourRange struct {
	Start string `yaml:"start"`
	End   string `yaml:"end"`

	start, end int // minutes after midnight
}

// MuteInterval is a time a sink is muted: a date range (Robusta's
// start_date/end_date, "2026-12-24 00:00" or "2026-12-24"), or days of the
// week with optional hours, in its timezone (default UTC).
type MuteInterval struct {
	Timezone  string      `yaml:"timezone"`
	StartDate string      `yaml:"start_date"`
	EndDate   string      `yaml:"end_date"`
	Days      []string    `yaml:"days"`
	Hours     []HourRange `yaml:"hours"`

	loc        *time.Location
	from, till time.Time
	weekly     WeeklyInterval
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday,
	"mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tuesday": time.Tuesday,
	"wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thr": time.Thursday, "thursday": time.Thursday, // Robusta's docs write thr
	"fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

func loadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("timezone: %q is not an IANA time zone (Europe/Berlin, America/New_York, UTC)", name)
	}
	return loc, nil
}

func parseClock(s string, allow24 bool) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	switch {
	case !ok || err1 != nil || err2 != nil || len(m) != 2 || mm < 0 || mm > 59 || hh < 0:
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	case hh == 24 && mm == 0 && allow24:
		return 24 * 60, nil
	case hh > 23:
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return hh*60 + mm, nil
}

func (w *WeeklyInterval) compile(field string) error {
	w.days = [7]bool{}
	if len(w.Days) == 0 {
		return fmt.Errorf("%s.days: required (mon, tue, wed, thu, fri, sat, sun)", field)
	}
	for _, d := range w.Days {
		wd, ok := weekdays[strings.ToLower(strings.TrimSpace(d))]
		if !ok {
			return fmt.Errorf("%s.days: %q is not a day (mon, tue, wed, thu, fri, sat, sun)", field, d)
		}
		w.days[wd] = true
	}
	for i := range w.Hours {
		h := &w.Hours[i]
		var err error
		if h.start, err = parseClock(h.Start, false); err != nil {
			return fmt.Errorf("%s.hours[%d].start: %w", field, i, err)
		}
		if h.end, err = parseClock(h.End, true); err != nil {
			return fmt.Errorf("%s.hours[%d].end: %w", field, i, err)
		}
		if h.end <= h.start {
			return fmt.Errorf("%s.hours[%d]: end %s is not after start %s (split a range over midnight in two days)", field, i, h.End, h.Start)
		}
	}
	return nil
}

// contains reports whether local (a time in the interval's zone) falls in it.
func (w *WeeklyInterval) contains(local time.Time) bool {
	if !w.days[local.Weekday()] {
		return false
	}
	if len(w.Hours) == 0 {
		return true
	}
	m := local.Hour()*60 + local.Minute()
	for _, h := range w.Hours {
		if m >= h.start && m < h.end {
			return true
		}
	}
	return false
}

func (a *Activity) compile() error {
	loc, err := loadZone(a.Timezone)
	if err != nil {
		return fmt.Errorf("activity.%w", err)
	}
	a.loc = loc
	if len(a.Intervals) == 0 {
		return errors.New("activity.intervals: required (a sink with no active interval would never send; leave activity out to always send)")
	}
	for i := range a.Intervals {
		if err := a.Intervals[i].compile(fmt.Sprintf("activity.intervals[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

// Active reports whether t falls in one of the intervals. A nil Activity is
// always active.
func (a *Activity) Active(t time.Time) bool {
	if a == nil {
		return true
	}
	local := t.In(a.loc)
	for i := range a.Intervals {
		if a.Intervals[i].contains(local) {
			return true
		}
	}
	return false
}

func parseDate(s string, loc *time.Location, end bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.ParseInLocation("2006-01-02 15:04", s, loc); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02", s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date \"YYYY-MM-DD HH:MM\" or \"YYYY-MM-DD\"", s)
	}
	if end {
		t = t.AddDate(0, 0, 1) // a whole end day is muted
	}
	return t, nil
}

func (m *MuteInterval) compile(field string) error {
	loc, err := loadZone(m.Timezone)
	if err != nil {
		return fmt.Errorf("%s.%w", field, err)
	}
	m.loc = loc
	dated := m.StartDate != "" || m.EndDate != ""
	weekly := len(m.Days) > 0 || len(m.Hours) > 0
	switch {
	case dated && weekly:
		return fmt.Errorf("%s: either start_date/end_date or days/hours, not both (use two intervals)", field)
	case dated:
		if m.StartDate == "" || m.EndDate == "" {
			return fmt.Errorf("%s: start_date and end_date are both required", field)
		}
		if m.from, err = parseDate(m.StartDate, loc, false); err != nil {
			return fmt.Errorf("%s.start_date: %w", field, err)
		}
		if m.till, err = parseDate(m.EndDate, loc, true); err != nil {
			return fmt.Errorf("%s.end_date: %w", field, err)
		}
		if !m.till.After(m.from) {
			return fmt.Errorf("%s: end_date %s is not after start_date %s", field, m.EndDate, m.StartDate)
		}
		return nil
	case weekly:
		m.weekly = WeeklyInterval{Days: m.Days, Hours: m.Hours}
		return m.weekly.compile(field)
	}
	return fmt.Errorf("%s: set start_date and end_date, or days (and hours)", field)
}

// Contains reports whether t falls in the mute interval.
func (m *MuteInterval) Contains(t time.Time) bool {
	if !m.from.IsZero() {
		return !t.Before(m.from) && t.Before(m.till)
	}
	return m.weekly.contains(t.In(m.loc))
}

// decodeActivity and decodeMutes compile at load time so a bad zone, day or
// time is a load error on its line.
func decodeActivity(node *yaml.Node) (*Activity, error) {
	var a Activity
	if err := params.Decode(node, &a); err != nil {
		return nil, err
	}
	if err := a.compile(); err != nil {
		return nil, params.Errorf(node, "%v", err)
	}
	return &a, nil
}

func decodeMutes(node *yaml.Node) ([]MuteInterval, error) {
	var ms []MuteInterval
	if err := params.Decode(node, &ms); err != nil {
		return nil, err
	}
	for i := range ms {
		if err := ms[i].compile(fmt.Sprintf("mute_intervals[%d]", i)); err != nil {
			return nil, params.Errorf(node.Content[i], "%v", err)
		}
	}
	return ms, nil
}
