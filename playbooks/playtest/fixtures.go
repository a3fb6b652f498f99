package playtest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/params"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/sinks"
)

// A fixture is a test case for playbooks, kept in a folder named tests
// beside them (playbook loading skips those folders):
//
//	# tests/crashloop.yaml
//	name: a crash-looping pod in prod pages on-call
//	alert:                          # one Prometheus alert, as Alertmanager sends it
//	  labels: {alertname: KubePodCrashLooping, namespace: prod-shop, pod: cart-1}
//	# or  event: events/crashloop.json     (a file, relative to this one)
//	# or  event: {kind: pod_crash_loop, subject: {...}}   (inline)
//	# or  event: pods/cart-1.yaml   (a Pod, Job, Node or Event as kubectl prints it)
//	expect:
//	  playbooks: [crashloop]        # in run order; [] expects no match
//	  actions: [create_finding, template_enricher]
//	  sinks: [oncall]               # after routing
//
// A file holds one fixture or a list of them. A key left out of expect is
// not checked. An event file with several alerts checks each of them. A
// Kubernetes object is checked through the events medic's Kubernetes
// detector would publish for it under the set's triggers; when it would
// publish none, the fixture expects no playbook, action or sink.
type Fixture struct {
	Name string
	// File and Line say where the fixture is.
	File string
	Line int
	// Events are what the fixture sends.
	Events []event.Event
	Expect Expect
}

// Expect is a fixture's expected outcome; nil fields are not checked.
type Expect struct {
	Playbooks *[]string `yaml:"playbooks"`
	Actions   *[]string `yaml:"actions"`
	Sinks     *[]string `yaml:"sinks"`
}

// Location is file:line.
func (f Fixture) Location() string { return fmt.Sprintf("%s:%d", f.File, f.Line) }

// FindFixtures lists the fixture files under each path: the YAML files in
// every folder named tests (a path that is itself a YAML file is taken as a
// fixture file), sorted.
func FindFixtures(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if d.IsDir() || !isYAML(d.Name()) {
				return nil
			}
			if slices.Contains(strings.Split(filepath.ToSlash(filepath.Dir(path)), "/"), playbooks.FixtureDir) {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// LoadFixtures reads one fixture file; Kubernetes objects in it are
// converted for the triggers of set. Errors name the file and line.
func LoadFixtures(path string, set *playbooks.Set) ([]Fixture, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: invalid YAML: %v", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty fixture file", path)
	}
	root := doc.Content[0]
	items := []*yaml.Node{root}
	if root.Kind == yaml.SequenceNode {
		items = root.Content
	}
	var out []Fixture
	for i, item := range items {
		f, err := parseFixture(path, item, i, len(items) > 1, set)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func parseFixture(path string, node *yaml.Node, idx int, many bool, set *playbooks.Set) (Fixture, error) {
	f := Fixture{File: path, Line: node.Line}
	dec := &Decoder{Set: set}
	fail := func(n *yaml.Node, format string, args ...any) (Fixture, error) {
		return f, fmt.Errorf("%s:%d: %s", path, n.Line, fmt.Sprintf(format, args...))
	}
	if node.Kind != yaml.MappingNode {
		return fail(node, "a fixture is a mapping with name, alert or event, and expect")
	}
	var haveExpect bool
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, val := node.Content[i], node.Content[i+1]
		switch key.Value {
		case "name":
			f.Name = val.Value
		case "alert":
			var a Alert
			if err := params.Decode(val, &a); err != nil {
				return fixtureErr(f, path, val, err)
			}
			ev, err := a.Event()
			if err != nil {
				return fail(val, "%v", err)
			}
			f.Events = append(f.Events, ev)
		case "event":
			evs, err := fixtureEvents(path, val, dec)
			if err != nil {
				return fail(val, "event: %v", err)
			}
			f.Events = append(f.Events, evs...)
		case "expect":
			haveExpect = true
			if err := params.Decode(val, &f.Expect); err != nil {
				return fixtureErr(f, path, val, err)
			}
		default:
			return fail(key, "unknown fixture key %q (known: name, alert, event, expect)", key.Value)
		}
	}
	if f.Name == "" {
		f.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		if many {
			f.Name = fmt.Sprintf("%s#%d", f.Name, idx+1)
		}
	}
	switch {
	case len(f.Events) == 0 && dec.Objects == 0:
		return fail(node, "fixture %q has no alert or event", f.Name)
	case !haveExpect:
		return fail(node, "fixture %q has no expect", f.Name)
	}
	return f, nil
}

func fixtureErr(f Fixture, path string, node *yaml.Node, err error) (Fixture, error) {
	var pe *params.Error
	if errors.As(err, &pe) && pe.Line > 0 {
		return f, fmt.Errorf("%s:%d: %s", path, pe.Line, pe.Msg)
	}
	return f, fmt.Errorf("%s:%d: %v", path, node.Line, err)
}

// fixtureEvents reads an event given as a file name (relative to the
// fixture) or inline.
func fixtureEvents(fixturePath string, val *yaml.Node, dec *Decoder) ([]event.Event, error) {
	if val.Kind == yaml.ScalarNode {
		p := val.Value
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(fixturePath), p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		evs, err := dec.Decode(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", val.Value, err)
		}
		return evs, nil
	}
	var doc any
	if err := val.Decode(&doc); err != nil {
		return nil, err
	}
	return dec.eventsFrom(doc)
}

// Result is the outcome of one fixture.
type Result struct {
	Fixture Fixture
	// Reports has one report per event.
	Reports []Report
	// Diffs are the expectations that did not hold; empty means passed.
	Diffs []string
}

// Passed reports whether every expectation held.
func (r Result) Passed() bool { return len(r.Diffs) == 0 }

// Check runs a fixture against set, routing with specs.
func Check(set *playbooks.Set, specs []sinks.Spec, f Fixture) Result {
	res := Result{Fixture: f}
	if len(f.Events) == 0 {
		// A Kubernetes object the detector reports nothing for.
		none := []string{}
		for _, c := range []struct {
			what string
			want *[]string
		}{{"playbooks", f.Expect.Playbooks}, {"actions", f.Expect.Actions}, {"sinks", f.Expect.Sinks}} {
			if c.want != nil && !slices.Equal(*c.want, none) {
				res.Diffs = append(res.Diffs, fmt.Sprintf("%s: want %s, got no event (medic's Kubernetes triggers report nothing for the object)", c.what, list(*c.want)))
			}
		}
		return res
	}
	for i := range f.Events {
		ev := &f.Events[i]
		rep := Run(set, ev, specs)
		res.Reports = append(res.Reports, rep)
		prefix := ""
		if len(f.Events) > 1 {
			prefix = fmt.Sprintf("event %d (%s): ", i+1, ev.Title)
		}
		compare := func(what string, want *[]string, got []string) {
			if want == nil || slices.Equal(*want, got) {
				return
			}
			res.Diffs = append(res.Diffs, fmt.Sprintf("%s%s: want %s, got %s", prefix, what, list(*want), list(got)))
		}
		compare("playbooks", f.Expect.Playbooks, rep.PlaybookNames())
		compare("actions", f.Expect.Actions, rep.ActionNames())
		compare("sinks", f.Expect.Sinks, rep.Sinks)
	}
	return res
}

func list(s []string) string { return "[" + strings.Join(s, ", ") + "]" }
