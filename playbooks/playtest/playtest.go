// Package playtest answers "what would medic do with this event?" without
// doing it: which playbooks match, which actions they would run and which
// sinks would receive the finding. It also runs playbook test fixtures
// (tests/*.yaml beside the playbooks), the unit tests of a playbook
// repository. `medic playbooks test` is its command line.
package playtest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/sinks"
)

// Report is what would happen for one event. No action is run.
type Report struct {
	Event     EventInfo `json:"event"`
	Playbooks []Match   `json:"playbooks"`
	// Actions are the actions that would run, in order, as playbook/action.
	Actions []string `json:"actions"`
	// RequestedSinks are the sinks the matched playbooks name; empty means
	// the default sinks.
	RequestedSinks []string `json:"requestedSinks,omitempty"`
	// Sinks would receive the finding, after routing (defaults, scopes).
	Sinks []string `json:"sinks"`
	// UnknownSinks are named by playbooks but not configured.
	UnknownSinks []string `json:"unknownSinks,omitempty"`
	// RoutedSeverity is the severity sink scopes were applied with: the
	// event's own, since create_finding, which may change it, is not run.
	RoutedSeverity string `json:"routedSeverity"`
}

// EventInfo summarises the event a report is about.
type EventInfo struct {
	Kind     string            `json:"kind"`
	Status   string            `json:"status,omitempty"`
	Severity string            `json:"severity,omitempty"`
	Title    string            `json:"title,omitempty"`
	Subject  string            `json:"subject,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// Match is one playbook that would run.
type Match struct {
	Name     string `json:"name"`
	Location string `json:"location"`
	// Triggers are the playbook's triggers that matched, with their lines.
	Triggers []string `json:"triggers"`
	Actions  []string `json:"actions"`
	Sinks    []string `json:"sinks,omitempty"`
	Stop     bool     `json:"stop,omitempty"`
}

// Run matches ev against set the way the engine does (run order, `stop`)
// and routes the would-be finding with specs. It runs no action.
func Run(set *playbooks.Set, ev *event.Event, specs []sinks.Spec) Report {
	r := Report{Event: infoOf(ev), Playbooks: []Match{}, Actions: []string{}, Sinks: []string{}, RoutedSeverity: string(ev.Severity)}
	for _, pb := range set.Playbooks {
		if !pb.Matches(ev) {
			continue
		}
		m := Match{Name: pb.Name, Location: pb.Location(), Triggers: []string{}, Actions: []string{}, Sinks: pb.Sinks, Stop: pb.Stop}
		for _, t := range pb.Triggers {
			if t.Match(ev) {
				m.Triggers = append(m.Triggers, fmt.Sprintf("%s (line %d)", t.Name, t.Line))
			}
		}
		for _, a := range pb.Actions {
			m.Actions = append(m.Actions, a.Name)
			r.Actions = append(r.Actions, pb.Name+"/"+a.Name)
		}
		for _, s := range pb.Sinks {
			if !slices.Contains(r.RequestedSinks, s) {
				r.RequestedSinks = append(r.RequestedSinks, s)
			}
		}
		r.Playbooks = append(r.Playbooks, m)
		if pb.Stop {
			break
		}
	}
	if len(r.Playbooks) > 0 {
		f := event.NewFinding(*ev, ev.ReceivedAt)
		targets, unknown := sinks.Route(specs, f, r.RequestedSinks)
		r.Sinks = append(r.Sinks, targets...)
		r.UnknownSinks = unknown
	}
	return r
}

// PlaybookNames lists the matched playbooks.
func (r Report) PlaybookNames() []string {
	out := make([]string, len(r.Playbooks))
	for i, m := range r.Playbooks {
		out[i] = m.Name
	}
	return out
}

// ActionNames lists the actions that would run, in order, without their
// playbooks.
func (r Report) ActionNames() []string {
	out := []string{}
	for _, m := range r.Playbooks {
		out = append(out, m.Actions...)
	}
	return out
}

func infoOf(ev *event.Event) EventInfo {
	return EventInfo{Kind: string(ev.Kind), Status: string(ev.Status), Severity: string(ev.Severity),
		Title: ev.Title, Subject: ev.Subject.String(), Labels: ev.Labels}
}

// Text renders a report for people.
func (r Report) Text() string {
	var b strings.Builder
	e := r.Event
	fmt.Fprintf(&b, "event: %s", e.Kind)
	if e.Status != "" {
		fmt.Fprintf(&b, " %s", e.Status)
	}
	if e.Title != "" {
		fmt.Fprintf(&b, " %q", e.Title)
	}
	if e.Subject != "" {
		fmt.Fprintf(&b, " on %s", e.Subject)
	}
	if e.Severity != "" {
		fmt.Fprintf(&b, ", severity %s", e.Severity)
	}
	b.WriteString("\n")
	if len(r.Playbooks) == 0 {
		b.WriteString("  no playbook matches: no finding, nothing is sent\n")
		return b.String()
	}
	b.WriteString("  matching playbooks, in run order:\n")
	for i, m := range r.Playbooks {
		fmt.Fprintf(&b, "    %d. %s  (%s)\n", i+1, m.Name, m.Location)
		fmt.Fprintf(&b, "         triggers: %s\n", strings.Join(m.Triggers, ", "))
		fmt.Fprintf(&b, "         actions:  %s\n", strings.Join(m.Actions, ", "))
		if len(m.Sinks) > 0 {
			fmt.Fprintf(&b, "         sinks:    %s\n", strings.Join(m.Sinks, ", "))
		}
		if m.Stop {
			b.WriteString("         stop:     later playbooks do not run\n")
		}
	}
	how := "the default sinks"
	if len(r.RequestedSinks) > 0 {
		how = "named by the playbooks"
	}
	sinksText := strings.Join(r.Sinks, ", ")
	if sinksText == "" {
		sinksText = "(none: every candidate sink's scope refuses it)"
	}
	fmt.Fprintf(&b, "  sinks: %s  (%s, routed with severity %s)\n", sinksText, how, r.RoutedSeverity)
	if len(r.UnknownSinks) > 0 {
		fmt.Fprintf(&b, "  not configured: %s\n", strings.Join(r.UnknownSinks, ", "))
	}
	return b.String()
}
