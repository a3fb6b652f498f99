// Package robusta converts a Robusta Helm values file (customPlaybooks,
// namedCustomPlaybooks, sinksConfig, disabledPlaybooks and, on request, the
// built-in playbook lists) into medic playbooks and a sink configuration,
// and lists everything it could not convert and why.
//
// A trigger is converted only when medic has one of the same name whose
// parameters accept Robusta's (dropping a condition would make a playbook
// fire more often); a Robusta action is mapped to a medic action of the
// same or an equivalent name, and a parameter medic does not know is dropped
// and listed. A playbook left without triggers or actions is not converted.
package robusta

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/params"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/triggers"
)

// Options select what is converted and what medic offers.
type Options struct {
	// Builtin also converts Robusta's builtinPlaybooks and
	// priorityBuiltinPlaybooks (and platformPlaybooks when the values enable
	// them): useful to see how much of a stock Robusta medic covers.
	Builtin bool
	// HasTrigger, HasAction and SinkTypes describe medic; nil means the
	// registries of this binary.
	HasTrigger func(name string) bool
	HasAction  func(name string) bool
	SinkTypes  []string
	// BuiltinPlaybooks are the names of medic's built-in playbooks (for
	// disabledPlaybooks); nil means this binary's.
	BuiltinPlaybooks []string
}

func (o *Options) defaults() error {
	if o.HasTrigger == nil {
		names := triggers.Names()
		o.HasTrigger = func(n string) bool { return slices.Contains(names, n) }
	}
	if o.HasAction == nil {
		names := actions.Names()
		o.HasAction = func(n string) bool { return slices.Contains(names, n) }
	}
	if o.SinkTypes == nil {
		o.SinkTypes = sinks.Types()
	}
	if o.BuiltinPlaybooks == nil {
		files, err := playbooks.BuiltinFiles()
		if err != nil {
			return err
		}
		set, err := playbooks.Build(files, playbooks.Options{})
		if err != nil {
			return fmt.Errorf("medic's built-in playbooks: %w", err)
		}
		o.BuiltinPlaybooks = set.Names()
	}
	return nil
}

// Issue is one thing the report says: something not converted, or changed
// on the way.
type Issue struct {
	// What is the part: "action `node_bash_enricher`", "" for the whole.
	What string `json:"what,omitempty"`
	// Where is the place in the values file: customPlaybooks[3] (name).
	Where string `json:"where"`
	Msg   string `json:"message"`
}

func (i Issue) String() string {
	if i.What == "" {
		return i.Where + ": " + i.Msg
	}
	return i.What + " in " + i.Where + ": " + i.Msg
}

// Result is the conversion.
type Result struct {
	// Playbooks is the medic playbook file (YAML).
	Playbooks []byte
	// Config is a medic.yaml fragment: sinks and playbooks.disabled.
	Config []byte
	// Counts.
	PlaybooksSeen, PlaybooksConverted int
	SinksSeen, SinksConverted         int
	// NotConverted lists what was left out; Changed what was converted with
	// a difference (a dropped parameter, a rewritten template).
	NotConverted []Issue
	Changed      []Issue
}

type playbookOut struct {
	Name        string           `yaml:"name"`
	Description string           `yaml:"description,omitempty"`
	Triggers    []map[string]any `yaml:"triggers"`
	Actions     []map[string]any `yaml:"actions"`
	Sinks       []string         `yaml:"sinks,omitempty"`
	Stop        bool             `yaml:"stop,omitempty"`
}

type converter struct {
	opts      Options
	res       *Result
	pending   []Issue           // changes of the item being converted, kept if it is
	sinkNames map[string]string // Robusta sink name → medic sink name ("" when not converted)
	names     map[string]bool
}

// Convert converts a Robusta values file. source names the file in the
// comments of the output.
func Convert(values []byte, source string, opts Options) (*Result, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(values, &doc); err != nil {
		return nil, fmt.Errorf("%s: not a YAML values file: %w", source, err)
	}
	c := &converter{opts: opts, res: &Result{}, sinkNames: map[string]string{}, names: map[string]bool{}}

	sinkSpecs := c.convertSinks(doc["sinksConfig"])

	disabled := map[string]bool{}
	for _, n := range asList(doc["disabledPlaybooks"]) {
		if s, ok := n.(string); ok {
			disabled[s] = true
		}
	}
	type section struct {
		key   string
		items []any
		names []string
	}
	var sections []section
	if opts.Builtin {
		sections = append(sections, section{key: "priorityBuiltinPlaybooks", items: asList(doc["priorityBuiltinPlaybooks"])})
	}
	sections = append(sections, section{key: "customPlaybooks", items: asList(doc["customPlaybooks"])})
	if named, ok := doc["namedCustomPlaybooks"].(map[string]any); ok {
		keys := sortedKeys(named)
		s := section{key: "namedCustomPlaybooks"}
		for _, k := range keys {
			s.items = append(s.items, named[k])
			s.names = append(s.names, k)
		}
		sections = append(sections, s)
	}
	if opts.Builtin {
		sections = append(sections, section{key: "builtinPlaybooks", items: asList(doc["builtinPlaybooks"])})
		if enabled, _ := doc["enablePlatformPlaybooks"].(bool); enabled {
			sections = append(sections, section{key: "platformPlaybooks", items: asList(doc["platformPlaybooks"])})
		}
	}

	var out []playbookOut
	for _, s := range sections {
		for i, item := range s.items {
			where := fmt.Sprintf("%s[%d]", s.key, i)
			if s.names != nil {
				where = fmt.Sprintf("%s.%s", s.key, s.names[i])
			}
			c.res.PlaybooksSeen++
			pb, ok := c.convertPlaybook(where, item, disabled)
			c.keep(ok)
			if ok {
				out = append(out, pb)
				c.res.PlaybooksConverted++
			}
		}
	}

	// disabledPlaybooks: names of medic's built-in playbooks are disabled
	// in medic too; the others need nothing.
	var medicDisabled []string
	for _, n := range sortedKeys(disabled) {
		switch {
		case slices.Contains(opts.BuiltinPlaybooks, n):
			medicDisabled = append(medicDisabled, n)
		case c.names[n]:
		default:
			c.notConverted("disabledPlaybooks", "%q: medic has no playbook of that name, so there is nothing to disable", n)
		}
	}

	var err error
	c.res.Playbooks, err = playbooksYAML(out, source)
	if err != nil {
		return nil, err
	}
	c.res.Config, err = configYAML(sinkSpecs, medicDisabled, source)
	if err != nil {
		return nil, err
	}
	return c.res, nil
}

func (c *converter) notConverted(where, format string, args ...any) {
	c.notConvertedPart("", where, format, args...)
}

func (c *converter) notConvertedPart(what, where, format string, args ...any) {
	c.res.NotConverted = append(c.res.NotConverted, Issue{What: what, Where: where, Msg: fmt.Sprintf(format, args...)})
}

// changed records a difference; it is reported only if the item it belongs
// to is converted (see keep).
func (c *converter) changed(where, format string, args ...any) {
	c.pending = append(c.pending, Issue{Where: where, Msg: fmt.Sprintf(format, args...)})
}

// keep ends an item: its changes are reported when it was converted.
func (c *converter) keep(converted bool) {
	if converted {
		c.res.Changed = append(c.res.Changed, c.pending...)
	}
	c.pending = nil
}

var invalidNameChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func (c *converter) convertPlaybook(where string, item any, disabled map[string]bool) (playbookOut, bool) {
	m, ok := item.(map[string]any)
	if !ok {
		c.notConverted(where, "not a playbook (a mapping with triggers and actions)")
		return playbookOut{}, false
	}
	name, _ := m["name"].(string)
	if name != "" {
		where = fmt.Sprintf("%s (%s)", where, name)
	}
	if disabled[name] {
		c.notConverted(where, "listed in disabledPlaybooks")
		c.names[name] = true // handled: disabledPlaybooks need not mention it again
		return playbookOut{}, false
	}
	pb := playbookOut{Name: name}
	if pb.Name == "" {
		pb.Name = strings.NewReplacer("[", "-", "]", "", ".", "-").Replace(where)
	}
	if clean := strings.Trim(invalidNameChars.ReplaceAllString(pb.Name, "-"), "-._"); clean != pb.Name {
		c.changed(where, "renamed to %q (medic names use letters, digits, '.', '_' and '-')", clean)
		pb.Name = clean
	}
	for base, n := pb.Name, 2; c.names[pb.Name]; n++ {
		pb.Name = fmt.Sprintf("%s-%d", base, n)
	}
	for _, k := range sortedKeys(m) {
		switch k {
		case "name", "triggers", "actions", "sinks", "stop":
		case "description":
			pb.Description, _ = m[k].(string)
		default:
			c.changed(where, "key %q dropped: medic playbooks have no such setting", k)
		}
	}
	pb.Stop, _ = m["stop"].(bool)

	for _, t := range asList(m["triggers"]) {
		if conv, ok := c.convertTrigger(where, t); ok {
			pb.Triggers = append(pb.Triggers, conv)
		}
	}
	for _, a := range asList(m["actions"]) {
		if conv, ok := c.convertAction(where, a); ok {
			pb.Actions = append(pb.Actions, conv)
		}
	}
	if rs := asList(m["sinks"]); len(rs) > 0 {
		var dropped []string
		for _, s := range rs {
			name, _ := s.(string)
			if mapped := c.sinkNames[name]; mapped != "" {
				pb.Sinks = append(pb.Sinks, mapped)
			} else {
				dropped = append(dropped, name)
			}
		}
		if len(pb.Sinks) == 0 {
			c.notConverted(where, "none of its sinks (%s) is converted; it would go to the default sinks instead", strings.Join(dropped, ", "))
			return pb, false
		}
		if len(dropped) > 0 {
			c.changed(where, "sinks %s dropped (not converted)", strings.Join(dropped, ", "))
		}
	}
	switch {
	case len(pb.Triggers) == 0:
		c.notConverted(where, "no trigger could be converted")
		return pb, false
	case len(pb.Actions) == 0:
		c.notConverted(where, "no action could be converted")
		return pb, false
	}
	// The whole playbook must load in medic.
	data, err := yaml.Marshal([]playbookOut{pb})
	if err == nil {
		_, err = playbooks.Build([]playbooks.File{{Path: "converted.yaml", Data: data}}, playbooks.Options{})
	}
	if err != nil {
		c.notConverted(where, "the converted playbook does not load in medic: %v", err)
		return pb, false
	}
	c.names[pb.Name] = true
	return pb, true
}

// single reads a `- name: {params}` item.
func single(item any) (string, map[string]any, bool) {
	switch v := item.(type) {
	case string:
		return v, map[string]any{}, true
	case map[string]any:
		if len(v) != 1 {
			return "", nil, false
		}
		for k, p := range v {
			pm, ok := p.(map[string]any)
			if p == nil {
				pm, ok = map[string]any{}, true
			}
			return k, pm, ok
		}
	}
	return "", nil, false
}

func (c *converter) convertTrigger(where string, item any) (map[string]any, bool) {
	name, p, ok := single(item)
	if !ok {
		c.notConverted(where, "a trigger is not `- on_x: {parameters}`")
		return nil, false
	}
	what := fmt.Sprintf("trigger `%s`", name)
	if !c.opts.HasTrigger(name) {
		c.notConvertedPart(what, where, "no medic equivalent")
		return nil, false
	}
	p = clone(p)
	if sc, ok := p["scope"]; ok {
		conv, err := convertScope(sc)
		if err != nil {
			c.notConvertedPart(what, where, "scope: %v", err)
			return nil, false
		}
		p["scope"] = conv
	}
	if err := buildWith(name, p, triggersBuild); err != nil {
		c.notConvertedPart(what, where, "%v (dropping a condition would make the playbook fire more often)", err)
		return nil, false
	}
	return map[string]any{name: p}, true
}

// actionMap renames Robusta actions that medic has under another name or
// shape; each returns the medic action and parameters.
var actionMap = map[string]func(c *converter, where string, p map[string]any) (string, map[string]any){
	"create_finding":             findingAction,
	"customise_finding":          findingAction,
	"template_enricher":          templateAction,
	"alert_explanation_enricher": explanationAction,
	"default_enricher": func(c *converter, where string, p map[string]any) (string, map[string]any) {
		for _, k := range sortedKeys(p) {
			c.changed(where, "default_enricher: parameter %q dropped", k)
		}
		return "default_enricher", map[string]any{}
	},
}

func (c *converter) convertAction(where string, item any) (map[string]any, bool) {
	name, p, ok := single(item)
	if !ok {
		c.notConverted(where, "an action is not `- action_name: {parameters}`")
		return nil, false
	}
	what := fmt.Sprintf("action `%s`", name)
	p = clone(p)
	target := name
	if f, special := actionMap[name]; special {
		target, p = f(c, where, p)
	}
	if !c.opts.HasAction(target) {
		c.notConvertedPart(what, where, "no medic equivalent")
		return nil, false
	}
	// Drop what medic's action does not know, and say so; stop at errors
	// that are not about unknown parameters.
	for range 20 {
		err := buildWith(target, p, actionsBuild)
		if err == nil {
			return map[string]any{target: p}, true
		}
		key := unknownParam(err)
		if key == "" || !hasKey(p, key) {
			c.notConvertedPart(what, where, "%v", err)
			return nil, false
		}
		delete(p, key)
		c.changed(where, "%s: parameter %q dropped (medic's %s has no such parameter)", name, key, target)
	}
	c.notConvertedPart(what, where, "too many unknown parameters")
	return nil, false
}

var unknownParamRE = regexp.MustCompile(`unknown parameter "([^"]+)"`)

func unknownParam(err error) string {
	m := unknownParamRE.FindStringSubmatch(err.Error())
	if m == nil {
		return ""
	}
	return m[1]
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

var severityMap = map[string]string{
	"HIGH": "high", "MEDIUM": "warning", "LOW": "info", "INFO": "info", "DEBUG": "none",
}

func findingAction(c *converter, where string, p map[string]any) (string, map[string]any) {
	out := map[string]any{}
	for _, k := range sortedKeys(p) {
		v := p[k]
		switch k {
		case "title", "description":
			s := fmt.Sprint(v)
			conv := convertTemplate(s)
			if conv != s {
				c.changed(where, "%s: Robusta's $variables rewritten as Go templates: %q", k, conv)
			}
			out[k] = conv
		case "severity":
			sev, ok := severityMap[strings.ToUpper(fmt.Sprint(v))]
			if !ok {
				c.changed(where, "severity %v dropped: not a Robusta severity", v)
				continue
			}
			out["severity"] = sev
		case "aggregation_key":
			c.changed(where, "aggregation_key dropped: medic makes one finding per event")
		default:
			c.changed(where, "parameter %q dropped: medic's create_finding has no such parameter", k)
		}
	}
	return "create_finding", out
}

func templateAction(c *converter, where string, p map[string]any) (string, map[string]any) {
	out := map[string]any{}
	for _, k := range sortedKeys(p) {
		switch k {
		case "template":
			s := fmt.Sprint(p[k])
			conv := convertTemplate(s)
			if conv != s {
				c.changed(where, "template: Robusta's $variables rewritten as Go templates")
			}
			out["template"] = conv
		default:
			out[k] = p[k]
		}
	}
	return "template_enricher", out
}

func explanationAction(c *converter, where string, p map[string]any) (string, map[string]any) {
	var parts []string
	if s, _ := p["alert_explanation"].(string); s != "" {
		parts = append(parts, convertTemplate(s))
	}
	if s, _ := p["recommended_resolution"].(string); s != "" {
		parts = append(parts, "**Recommended resolution:** "+convertTemplate(s))
	}
	c.changed(where, "alert_explanation_enricher converted to template_enricher")
	return "template_enricher", map[string]any{"title": "Alert explanation", "template": strings.Join(parts, "\n\n")}
}

// templateVarRE matches Robusta's string.Template variables: $name,
// ${name}, $labels.x. $$ is a literal $.
var templateVarRE = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_.]*)\}|\$([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)?)`)

// convertTemplate rewrites Robusta's $variables as Go templates over the
// event: $name → {{ .Subject.Name }}, $labels.team → {{ .Labels.team }},
// other variables are alert labels.
func convertTemplate(s string) string {
	return templateVarRE.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := templateVarRE.FindStringSubmatch(m)
		v := sub[1] + sub[2]
		switch {
		case v == "name":
			return "{{ .Subject.Name }}"
		case v == "namespace":
			return "{{ .Subject.Namespace }}"
		case v == "kind":
			return "{{ .Subject.Kind }}"
		case v == "node":
			return "{{ .Subject.Node }}"
		case strings.HasPrefix(v, "labels."):
			return fmt.Sprintf("{{ index .Labels %q }}", strings.TrimPrefix(v, "labels."))
		case strings.HasPrefix(v, "annotations."):
			return fmt.Sprintf("{{ index .Annotations %q }}", strings.TrimPrefix(v, "annotations."))
		}
		return fmt.Sprintf("{{ index .Labels %q }}", v)
	})
}

// convertScope turns Robusta's scope (include/exclude lists of {name,
// namespace, labels, annotations}) into medic's. Robusta matches name and
// namespace as regular expressions from the start (re.match), labels as
// k=v selectors; medic's patterns match the whole value.
func convertScope(v any) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("expected include and exclude lists")
	}
	out := map[string]any{}
	for _, k := range sortedKeys(m) {
		if k != "include" && k != "exclude" {
			return nil, fmt.Errorf("%q is not supported", k)
		}
		var rules []any
		for _, r := range asList(m[k]) {
			rule, err := convertRule(r)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			rules = append(rules, rule)
		}
		out[k] = rules
	}
	return out, nil
}

func convertRule(v any) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("a rule is a mapping")
	}
	out := map[string]any{}
	for _, k := range sortedKeys(m) {
		switch k {
		case "name", "namespace":
			var alts []string
			for _, x := range stringsOf(m[k]) {
				alts = append(alts, "(?:"+x+").*")
			}
			if len(alts) == 0 {
				return nil, fmt.Errorf("%s: expected a string or a list of strings", k)
			}
			out[k] = strings.Join(alts, "|")
		case "labels", "annotations":
			sels := stringsOf(m[k])
			if len(sels) != 1 {
				return nil, fmt.Errorf("%s: only one selector string is supported, got %d", k, len(sels))
			}
			kv := map[string]any{}
			for term := range strings.SplitSeq(sels[0], ",") {
				key, val, ok := strings.Cut(strings.TrimSpace(term), "=")
				if !ok || strings.ContainsAny(key, "!") || strings.HasPrefix(val, "=") {
					return nil, fmt.Errorf("%s: %q: only key=value terms are supported", k, term)
				}
				kv[strings.TrimSpace(key)] = regexp.QuoteMeta(strings.TrimSpace(val))
			}
			out[k] = kv
		default:
			return nil, fmt.Errorf("%q rules are not supported", k)
		}
	}
	return out, nil
}

func stringsOf(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, i := range x {
			if s, ok := i.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// sinkMap maps Robusta sink types to medic ones: the medic type, and for
// each medic parameter the Robusta parameters that may fill it.
var sinkMap = map[string]struct {
	types  []string
	params map[string][]string
}{
	"file_sink":     {types: []string{"file"}, params: map[string][]string{"path": {"file_name"}}},
	"slack_sink":    {types: []string{"slack"}, params: map[string][]string{"channel": {"slack_channel"}, "api_key": {"api_key"}, "token": {"api_key"}, "bot_token": {"api_key"}}},
	"ms_teams_sink": {types: []string{"msteams", "teams"}, params: map[string][]string{"webhook_url": {"webhook_url"}, "url": {"webhook_url"}}},
	"webhook_sink":  {types: []string{"webhook"}, params: map[string][]string{"url": {"url"}}},
}

var sinkNameRE = regexp.MustCompile(`[^a-z0-9_-]+`)

func (c *converter) convertSinks(v any) []*yaml.Node {
	var out []*yaml.Node
	used := map[string]bool{}
	for i, item := range asList(v) {
		c.res.SinksSeen++
		where := fmt.Sprintf("sinksConfig[%d]", i)
		typ, p, ok := single(item)
		if !ok {
			c.notConverted(where, "not a sink (`- slack_sink: {name: …}`)")
			continue
		}
		rname, _ := p["name"].(string)
		if rname != "" {
			where = fmt.Sprintf("%s (%s)", where, rname)
		}
		spec, ok := c.convertSink(where, typ, p)
		if !ok {
			c.keep(false)
			continue
		}
		name := strings.Trim(sinkNameRE.ReplaceAllString(strings.ToLower(rname), "-"), "-_")
		if name == "" {
			name = strings.TrimSuffix(typ, "_sink")
		}
		for base, n := name, 2; used[name]; n++ {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		if name != rname {
			c.changed(where, "sink renamed %q (medic sink names are lowercase letters, digits, '-' and '_')", name)
		}
		spec = append([]any{"name", name, "type", spec[1]}, spec[2:]...)
		node := orderedMap(spec)
		var s sinks.Spec
		err := node.Decode(&s)
		if err == nil {
			err = s.Validate()
		}
		if err != nil {
			c.notConverted(where, "%s: the converted sink does not load in medic: %v", typ, err)
			c.keep(false)
			continue
		}
		c.keep(true)
		used[name] = true
		c.sinkNames[rname] = name
		c.res.SinksConverted++
		out = append(out, node)
	}
	return out
}

// convertSink returns the medic sink as key, value pairs (type first).
func (c *converter) convertSink(where, typ string, p map[string]any) ([]any, bool) {
	m, known := sinkMap[typ]
	var medicType string
	for _, t := range m.types {
		if slices.Contains(c.opts.SinkTypes, t) {
			medicType = t
		}
	}
	if !known || medicType == "" {
		if known {
			c.notConverted(where, "%s: medic has no %s sink type (it has: %s)", typ, m.types[0], strings.Join(c.opts.SinkTypes, ", "))
		} else {
			c.notConverted(where, "%s: no medic equivalent", typ)
		}
		return nil, false
	}
	if typ == "file_sink" && p["file_name"] == nil && slices.Contains(c.opts.SinkTypes, "stdout") {
		medicType, m.params = "stdout", nil
	}
	pairs := []any{"type", medicType}
	var accepted []string
	for _, d := range sinks.Definitions() {
		if d.Name == medicType {
			accepted = params.Names(d.NewParams())
		}
	}
	usedRobusta := map[string]bool{"name": true}
	for _, mp := range sortedKeys(stringsMap(m.params)) {
		if accepted != nil && !slices.Contains(accepted, mp) {
			continue
		}
		for _, rp := range m.params[mp] {
			if v, ok := p[rp]; ok && !usedRobusta[rp] {
				pairs = append(pairs, mp, v)
				usedRobusta[rp] = true
			}
		}
	}
	for _, k := range sortedKeys(p) {
		if usedRobusta[k] {
			continue
		}
		switch k {
		case "default":
			pairs = append(pairs, "default", p[k])
		case "scope":
			sc, err := convertScope(p[k])
			if err != nil {
				c.notConverted(where, "%s: scope: %v (without it the sink would receive more)", typ, err)
				return nil, false
			}
			pairs = append(pairs, "scope", sc)
		case "match":
			c.notConverted(where, "%s: `match` (deprecated in Robusta) cannot be converted; rewrite it as a scope", typ)
			return nil, false
		default:
			c.changed(where, "%s: parameter %q dropped: medic's %s sink has no such parameter", typ, k, medicType)
		}
	}
	return pairs, true
}

func stringsMap(m map[string][]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func orderedMap(pairs []any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(pairs); i += 2 {
		var k, v yaml.Node
		_ = k.Encode(pairs[i])
		_ = v.Encode(pairs[i+1])
		n.Content = append(n.Content, &k, &v)
	}
	return n
}

type buildFunc func(name string, node *yaml.Node) error

func triggersBuild(name string, node *yaml.Node) error {
	_, err := triggers.Build(name, node)
	return err
}
func actionsBuild(name string, node *yaml.Node) error {
	_, err := actions.Build(name, node)
	return err
}

func buildWith(name string, p map[string]any, build buildFunc) error {
	var node yaml.Node
	if err := node.Encode(p); err != nil {
		return err
	}
	err := build(name, &node)
	var pe *params.Error
	if errors.As(err, &pe) {
		return errors.New(pe.Msg) // lines refer to a generated document
	}
	return err
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func playbooksYAML(pbs []playbookOut, source string) ([]byte, error) {
	header := fmt.Sprintf("# medic playbooks converted from %s by `medic playbooks import-robusta`.\n"+
		"# Check them with `medic playbooks validate`; the import report lists what was left out.\n", source)
	if len(pbs) == 0 {
		return []byte(header + "# No playbook could be converted.\n[]\n"), nil
	}
	body, err := marshal(pbs)
	if err != nil {
		return nil, err
	}
	return append([]byte(header), body...), nil
}

func configYAML(specs []*yaml.Node, disabled []string, source string) ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# medic.yaml fragment converted from %s by `medic playbooks import-robusta`:\n"+
		"# merge it into medic.yaml. Secrets copied from the values file belong in files or the environment.\n", source)
	doc := map[string]any{}
	if len(specs) > 0 {
		doc["sinks"] = specs
	} else {
		b.WriteString("# No sink could be converted; medic's default sinks (stdout and a findings file) apply.\n")
	}
	if len(disabled) > 0 {
		doc["playbooks"] = map[string]any{"disabled": disabled}
	}
	if len(doc) == 0 {
		b.WriteString("{}\n")
		return []byte(b.String()), nil
	}
	body, err := marshal(doc)
	if err != nil {
		return nil, err
	}
	b.Write(body)
	return []byte(b.String()), nil
}

func marshal(v any) ([]byte, error) {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// Report renders the result for people.
func (r *Result) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "converted %d of %d playbooks and %d of %d sinks\n", r.PlaybooksConverted, r.PlaybooksSeen, r.SinksConverted, r.SinksSeen)
	if len(r.NotConverted) > 0 {
		fmt.Fprintf(&b, "\nnot converted (%d):\n", len(r.NotConverted))
		for _, i := range r.NotConverted {
			fmt.Fprintf(&b, "  cannot convert %s\n", i)
		}
	}
	if len(r.Changed) > 0 {
		fmt.Fprintf(&b, "\nconverted with changes (%d):\n", len(r.Changed))
		for _, i := range r.Changed {
			fmt.Fprintf(&b, "  %s\n", i)
		}
	}
	return b.String()
}
