// Package playbooks is the playbook format, its strict loader, the playbook
// set with safe reloads, and the engine that runs matching playbooks.
//
// A playbook file is a YAML list in the shape Robusta users know:
//
//   - name: crashloop-with-logs
//     triggers:
//   - on_prometheus_alert: {alert_name: KubePodCrashLooping}
//     actions:
//   - create_finding: {title: "{{ .Labels.pod }} is crash looping"}
//     sinks: [oncall]
//     stop: true
//
// Everything is checked at load time: an unknown trigger, action, sink or
// parameter is an error naming the file and line.
package playbooks

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/params"
	"github.com/medichq/medic/triggers"
)

// Playbook is one validated playbook, ready to run.
type Playbook struct {
	Name        string
	Description string
	// File and Line say where it was declared ("builtin:alerts.yaml" for
	// embedded ones).
	File     string
	Line     int
	Builtin  bool
	Triggers []Trigger
	Actions  []Action
	// Sinks overrides the default sinks when not empty.
	Sinks []string
	// Stop ends the run for an event after this playbook.
	Stop bool
	// Origin is the Git repository and commit the playbook came from; zero
	// for local folders and built-in playbooks.
	Origin Origin

	kinds map[event.Kind]bool
	// sinksLine is where Sinks was declared, for errors about a sink name.
	sinksLine int
}

// Trigger is a named trigger of a playbook.
type Trigger struct {
	Name string
	Line int
	triggers.Trigger
}

// Action is a named action of a playbook.
type Action struct {
	Name string
	Line int
	actions.Action
}

// Location is file:line.
func (p *Playbook) Location() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Matches reports whether any of the playbook's triggers fires for ev.
func (p *Playbook) Matches(ev *event.Event) bool {
	if !p.kinds[ev.Kind] {
		return false
	}
	for _, t := range p.Triggers {
		if t.Match(ev) {
			return true
		}
	}
	return false
}

// Error is one problem in one playbook file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Errors is every problem found while loading, in file and line order.
type Errors []Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// playbookKeys are the keys of one playbook, for "did you mean".
var playbookKeys = []string{"actions", "description", "name", "sinks", "stop", "triggers"}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,126}$`)

// parseFile parses one file's playbooks. It collects every error it can
// rather than stopping at the first, so one run of validate shows them all.
func parseFile(file string, data []byte, builtin bool, plugins Plugins) ([]*Playbook, Errors) {
	var errs Errors
	add := func(line int, format string, args ...any) {
		errs = append(errs, Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	addErr := func(node *yaml.Node, err error) {
		var list params.ErrorList
		if errors.As(err, &list) {
			for _, pe := range list {
				add(cmp.Or(pe.Line, node.Line), "%s", pe.Msg)
			}
			return
		}
		var pe *params.Error
		if errors.As(err, &pe) && pe.Line > 0 {
			add(pe.Line, "%s", pe.Msg)
			return
		}
		add(node.Line, "%v", err)
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		syntax := params.SyntaxErrors(data)
		for _, se := range syntax {
			add(se.Line, "%s", se.Msg)
		}
		if len(errs) == 0 { // cannot happen: SyntaxErrors re-parses the same bytes
			add(0, "invalid YAML: %v", err)
		}
		// Tabs alone: name them, then check the rest as if they were spaces,
		// so one run shows every problem. The file is rejected either way.
		untabbed, ok := params.UntabIndent(data)
		if !params.OnlyTabs(syntax) || !ok || yaml.Unmarshal(untabbed, &doc) != nil {
			return nil, errs
		}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind == yaml.MappingNode { // also accept {playbooks: [...]}
		var list *yaml.Node
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "playbooks" {
				list = root.Content[i+1]
			} else {
				add(root.Content[i].Line, "unknown top-level key %q (a playbook file is a list of playbooks, or {playbooks: [...]})", root.Content[i].Value)
			}
		}
		if list == nil {
			return nil, errs
		}
		root = list
	}
	if root.Kind != yaml.SequenceNode {
		add(root.Line, "a playbook file must be a YAML list of playbooks")
		return nil, errs
	}

	var out []*Playbook
	for idx, item := range root.Content {
		if item.Kind != yaml.MappingNode {
			add(item.Line, "playbook %d: expected a mapping with triggers and actions", idx+1)
			continue
		}
		pb := &Playbook{File: file, Line: item.Line, Builtin: builtin, kinds: map[event.Kind]bool{}}
		var haveTriggers, haveActions bool
		for i := 0; i+1 < len(item.Content); i += 2 {
			key, val := item.Content[i], item.Content[i+1]
			switch key.Value {
			case "name":
				if err := val.Decode(&pb.Name); err != nil || !nameRE.MatchString(pb.Name) {
					add(val.Line, "name %q: use letters, digits, '.', '_' or '-' (at most 127)", val.Value)
				}
			case "description":
				_ = val.Decode(&pb.Description)
			case "triggers":
				haveTriggers = true
				items := namedItems(val, "trigger", add)
				if len(items) == 0 && val.Kind == yaml.SequenceNode {
					add(val.Line, "triggers: the list is empty; a playbook needs at least one trigger")
				}
				for _, t := range items {
					trig, err := plugins.Triggers.Build(t.name, t.params)
					if err != nil {
						addErr(t.keyNode, err)
						continue
					}
					pb.Triggers = append(pb.Triggers, Trigger{Name: t.name, Line: t.keyNode.Line, Trigger: trig})
					for _, k := range trig.Kinds() {
						pb.kinds[k] = true
					}
				}
			case "actions":
				haveActions = true
				items := namedItems(val, "action", add)
				if len(items) == 0 && val.Kind == yaml.SequenceNode {
					add(val.Line, "actions: the list is empty; a playbook needs at least one action")
				}
				for _, a := range items {
					act, err := plugins.Actions.Build(a.name, a.params)
					if err != nil {
						addErr(a.keyNode, err)
						continue
					}
					pb.Actions = append(pb.Actions, Action{Name: a.name, Line: a.keyNode.Line, Action: act})
				}
			case "sinks":
				pb.sinksLine = val.Line
				if err := val.Decode(&pb.Sinks); err != nil {
					add(val.Line, "sinks: expected a list of sink names")
				}
			case "stop":
				if err := val.Decode(&pb.Stop); err != nil {
					add(val.Line, "stop: expected true or false")
				}
			default:
				add(key.Line, "unknown playbook key %q%s", key.Value, params.Hint(key.Value, playbookKeys))
			}
		}
		if !haveTriggers {
			add(item.Line, "playbook %s has no triggers", pb.displayName(idx))
		}
		if !haveActions {
			add(item.Line, "playbook %s has no actions", pb.displayName(idx))
		}
		if pb.Name == "" {
			pb.Name = fmt.Sprintf("%s#%d", strings.TrimSuffix(baseName(file), ".yaml"), idx+1)
		}
		// A trigger whose events are made for one playbook (on_schedule's
		// ticks) learns which.
		for _, t := range pb.Triggers {
			if b, ok := t.Trigger.(interface{ BindPlaybook(string) }); ok {
				b.BindPlaybook(pb.Name)
			}
		}
		out = append(out, pb)
	}
	return out, errs
}

func (p *Playbook) displayName(idx int) string {
	if p.Name != "" {
		return fmt.Sprintf("%q", p.Name)
	}
	return fmt.Sprintf("%d", idx+1)
}

type namedItem struct {
	name    string
	keyNode *yaml.Node
	params  *yaml.Node
}

// namedItems reads a list of one-key mappings (`- on_x: {params}`), also
// accepting a bare name (`- default_enricher`) for parameterless entries.
func namedItems(list *yaml.Node, what string, add func(int, string, ...any)) []namedItem {
	if list.Kind != yaml.SequenceNode {
		add(list.Line, "%ss: expected a list", what)
		return nil
	}
	var out []namedItem
	for _, it := range list.Content {
		switch {
		case it.Kind == yaml.ScalarNode && it.Value != "":
			out = append(out, namedItem{name: it.Value, keyNode: it})
		case it.Kind == yaml.MappingNode && len(it.Content) == 2:
			out = append(out, namedItem{name: it.Content[0].Value, keyNode: it.Content[0], params: it.Content[1]})
		case it.Kind == yaml.MappingNode && len(it.Content) > 2:
			add(it.Content[2].Line, "each %s is a mapping with exactly one key (its name); found %q after %q — is the indentation of its parameters right?",
				what, it.Content[2].Value, it.Content[0].Value)
		default:
			add(it.Line, "expected a %s as `- name: {parameters}`", what)
		}
	}
	return out
}

func baseName(path string) string {
	if i := strings.LastIndexAny(path, `/\:`); i >= 0 {
		return path[i+1:]
	}
	return path
}

// checkSinks reports playbooks that name sinks not in known.
func checkSinks(pbs []*Playbook, known []string) Errors {
	var errs Errors
	for _, pb := range pbs {
		for _, s := range pb.Sinks {
			if !slices.Contains(known, s) {
				errs = append(errs, Error{File: pb.File, Line: cmp.Or(pb.sinksLine, pb.Line),
					Msg: fmt.Sprintf("playbook %q names sink %q, which is not configured%s", pb.Name, s, sinkHint(s, known))})
			}
		}
	}
	return errs
}

// checkRemediation reports playbooks that name a remediation action the
// policy does not allow: medic stays read-only unless the operator says
// otherwise, whatever a playbook (or a Git repository of them) asks for.
func checkRemediation(pbs []*Playbook, policy actions.Remediation) Errors {
	var errs Errors
	for _, pb := range pbs {
		for _, a := range pb.Actions {
			if actions.IsRemediation(a.Name) && !policy.Allows(a.Name) {
				errs = append(errs, Error{File: pb.File, Line: a.Line,
					Msg: fmt.Sprintf("playbook %q: %s", pb.Name, policy.Why(a.Name))})
			}
		}
	}
	return errs
}

// sinkHint suggests the configured sink a misspelt name most likely meant,
// and lists them all either way: the list is what the reader checks next.
func sinkHint(name string, known []string) string {
	list := " (configured: " + strings.Join(known, ", ") + ")"
	if best := params.Suggest(name, known); best != "" {
		return fmt.Sprintf(" (did you mean %q? configured: %s)", best, strings.Join(known, ", "))
	}
	return list
}
