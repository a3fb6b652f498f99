package sinks

import (
	"slices"
	"time"

	"github.com/medichq/medic/event"
)

// Why a routed sink did not get a finding. Each is acked for that sink and
// counted (medic_sink_skipped_total{sink,reason}); none is dead-lettered.
const (
	SkipResolved = "send_resolved" // a resolved finding, and send_resolved: false
	SkipInactive = "activity"      // outside the sink's activity intervals
	SkipMuted    = "mute_intervals"
	SkipStopped  = "stop" // an earlier sink with stop: true took the finding
)

// Skip is a sink that the finding was routed to but that does not get it.
type Skip struct {
	Sink   string
	Reason string
}

// Decision is where one finding goes.
type Decision struct {
	// Targets get the finding, in configuration order.
	Targets []string
	// Skipped would have got it but for a routing key.
	Skipped []Skip
	// Unknown are sink names the playbooks asked for that are not configured.
	Unknown []string
}

// Route decides which sinks receive a finding now; see Decide.
func Route(specs []Spec, f *event.Finding, requested []string) (targets, unknown []string) {
	d := Decide(specs, f, requested, time.Now())
	return d.Targets, d.Unknown
}

// Decide decides which sinks receive a finding at time now. requested is the
// union of the sinks named by the playbooks that ran; when it is empty, the
// default sinks are considered. Sinks are considered in configuration order
// (so stop means "the sinks listed after this one"), and a considered sink
// takes the finding when
//
//   - its scope accepts it (else it is simply not routed there),
//   - it is active (activity) and not muted (mute_intervals) at now,
//   - the finding is firing, or send_resolved is true.
//
// A sink with stop: true that passes scope and time ends the routing, even
// for a resolved finding it does not send (so the resolve goes where the
// firing went). now is a parameter so tests control the clock.
func Decide(specs []Spec, f *event.Finding, requested []string, now time.Time) Decision {
	var d Decision
	for _, name := range requested {
		if !slices.ContainsFunc(specs, func(s Spec) bool { return s.Name == name }) && !slices.Contains(d.Unknown, name) {
			d.Unknown = append(d.Unknown, name)
		}
	}
	resolved := f.Event.Status == event.StatusResolved
	stopped := ""
	for i := range specs {
		s := &specs[i]
		if len(requested) == 0 && !s.Default || len(requested) > 0 && !slices.Contains(requested, s.Name) {
			continue
		}
		if slices.Contains(d.Targets, s.Name) || !s.Scope.Match(&f.Event, f.Severity) {
			continue
		}
		switch {
		case stopped != "":
			d.Skipped = append(d.Skipped, Skip{s.Name, SkipStopped})
			continue
		case !s.Activity.Active(now):
			d.Skipped = append(d.Skipped, Skip{s.Name, SkipInactive})
			continue
		case s.muted(now):
			d.Skipped = append(d.Skipped, Skip{s.Name, SkipMuted})
			continue
		}
		if s.Stop {
			stopped = s.Name
		}
		if resolved && !s.SendResolved {
			d.Skipped = append(d.Skipped, Skip{s.Name, SkipResolved})
			continue
		}
		d.Targets = append(d.Targets, s.Name)
	}
	return d
}

func (s *Spec) muted(now time.Time) bool {
	for i := range s.MuteIntervals {
		if s.MuteIntervals[i].Contains(now) {
			return true
		}
	}
	return false
}
