// Package robusta converts a Robusta Helm values file (customPlaybooks,
// namedCustomPlaybooks, sinksConfig, disabledPlaybooks and, on request, the
// built-in playbook lists) into medic playbooks, a medic.yaml fragment and
// medic Helm values, and reports every input item as converted, converted
// with loss (what was lost and why) or not converted (why, and what to do).
//
// It never widens silently: a trigger is converted only when medic has one
// whose parameters accept all of Robusta's (dropping a condition would make
// a playbook fire more often), a playbook that loses a silencer is not
// converted (it would deliver what Robusta silenced), and a sink that would
// lose a scope rule, an activity window, a mute interval or `stop` is not
// converted (it would receive more). Secrets never reach the output: they
// become references to a Kubernetes Secret the chart mounts.
//
// The Robusta → medic names are tables (mappings.go); whether a target
// exists is asked of this binary's registries, so the figures rise as
// medic grows.
package robusta

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
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/sinks"
)

// Options select what is converted and what medic offers.
type Options struct {
	// Builtin also converts Robusta's builtinPlaybooks and
	// priorityBuiltinPlaybooks (and platformPlaybooks when the values enable
	// them): useful to see how much of a stock Robusta medic covers.
	Builtin bool
	// Plugins and Sinks are medic's registries (internal/plugins.Builtin's
	// in the binary): every converted trigger, action, sink and playbook is
	// checked by building it from them. Both are required.
	Plugins playbooks.Plugins
	Sinks   *sinks.Registry
	// HasTrigger, HasAction and SinkTypes describe medic; nil means what
	// the registries above hold.
	HasTrigger func(name string) bool
	HasAction  func(name string) bool
	SinkTypes  []string
	// BuiltinPlaybooks are the names of medic's built-in playbooks (for
	// disabledPlaybooks); nil means this binary's.
	BuiltinPlaybooks []string
}

func (o *Options) defaults() error {
	if o.Plugins.Triggers == nil || o.Plugins.Actions == nil || o.Sinks == nil {
		return errors.New("robusta.Options: Plugins.Triggers, Plugins.Actions and Sinks are required (medic's registries: internal/plugins.Builtin)")
	}
	if o.HasTrigger == nil {
		o.HasTrigger = o.Plugins.Triggers.Has
	}
	if o.HasAction == nil {
		o.HasAction = o.Plugins.Actions.Has
	}
	if o.SinkTypes == nil {
		o.SinkTypes = o.Sinks.Types()
	}
	if o.BuiltinPlaybooks == nil {
		files, err := playbooks.BuiltinFiles()
		if err != nil {
			return fmt.Errorf("read medic's built-in playbooks: %w", err)
		}
		set, err := playbooks.Build(files, playbooks.Options{Plugins: o.Plugins})
		if err != nil {
			return fmt.Errorf("medic's built-in playbooks: %w", err)
		}
		o.BuiltinPlaybooks = set.Names()
	}
	return nil
}

// Outcome is what became of an input item.
type Outcome string

// The outcomes, in the report's order.
const (
	Converted    Outcome = "converted"
	Lossy        Outcome = "converted_with_loss"
	NotConverted Outcome = "not_converted"
)

// Kinds of input items.
const (
	KindPlaybook  = "playbook"
	KindTrigger   = "trigger"
	KindAction    = "action"
	KindSink      = "sink"
	KindSinkParam = "sink_param"
	KindDisabled  = "disabled_playbook"
	KindSetting   = "setting"
)

// Kinds lists the item kinds in the report's order.
var Kinds = []string{KindPlaybook, KindTrigger, KindAction, KindSink, KindSinkParam, KindDisabled, KindSetting}

// Item is one input item and what became of it.
type Item struct {
	Kind string `json:"kind"`
	// Where is the place in the values file: customPlaybooks[3] (name).
	Where string `json:"where"`
	// Name is Robusta's name: the trigger, action or sink type, the sink
	// parameter, the playbook.
	Name string `json:"name"`
	// Target is what it became in medic: an action, a sink type, a
	// parameter (api_key_file), a playbook name.
	Target  string  `json:"target,omitempty"`
	Outcome Outcome `json:"outcome"`
	// Reasons say what was lost, or why it was not converted.
	Reasons []string `json:"reasons,omitempty"`
	// Todo says what to do about it.
	Todo string `json:"todo,omitempty"`
}

// Secret is a secret of the values file, moved to a Kubernetes Secret.
type Secret struct {
	// Where is the parameter in the values file.
	Where string `json:"where"`
	// SecretName and SecretKey are the Kubernetes Secret and key the Helm
	// values refer to; File is where the chart mounts it for medic.
	SecretName string `json:"secret_name"`
	SecretKey  string `json:"secret_key"`
	File       string `json:"file"`
	// FromEnv is the environment variable Robusta read it from
	// ({{ env.X }}), if any.
	FromEnv string `json:"from_env,omitempty"`
}

// Result is the conversion.
type Result struct {
	// Playbooks is the medic playbook file (YAML).
	Playbooks []byte
	// Config is a medic.yaml fragment: sinks and playbooks.disabled.
	Config []byte
	// HelmValues are values for medic's chart: sinksConfig (secrets as
	// secretKeyRef), customPlaybooks, disabledPlaybooks, slack.botToken.
	HelmValues []byte
	// Items is every input item, in the order of the values file.
	Items []Item
	// Secrets lists the secrets to create, in order.
	Secrets []Secret
	// Remediations are the remediation actions the converted playbooks
	// name, sorted: they load only once the operator allows them
	// (remediation.enabled, remediation.allowed). Config and HelmValues
	// suggest that block commented out; the import never enables it.
	Remediations []string
}

// Lossless reports whether every item was converted without loss.
func (r *Result) Lossless() bool {
	for _, it := range r.Items {
		if it.Outcome != Converted {
			return false
		}
	}
	return true
}

// Count returns the number of items of kind with outcome.
func (r *Result) Count(kind string, o Outcome) int {
	n := 0
	for _, it := range r.Items {
		if it.Kind == kind && it.Outcome == o {
			n++
		}
	}
	return n
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
	sinkNames map[string]string // Robusta sink name → medic sink name ("" when not converted)
	names     map[string]bool
	slack     *slackToken
	// stopLost is the first sink whose stop: true medic does not keep.
	stopLost string
	// remediations are the remediation actions converted playbooks name:
	// the generated configuration suggests allowing them, commented out.
	remediations map[string]bool
}

// itemConv collects what happens to one item: what it loses, and why it
// fails.
type itemConv struct {
	losses []string
	failed []string
	todo   string
}

func (ic *itemConv) lose(format string, args ...any) {
	ic.losses = append(ic.losses, fmt.Sprintf(format, args...))
}

func (ic *itemConv) fail(format string, args ...any) {
	ic.failed = append(ic.failed, fmt.Sprintf(format, args...))
}

// item turns the collected outcome into an Item.
func (ic *itemConv) item(kind, where, name, target string) Item {
	it := Item{Kind: kind, Where: where, Name: name, Target: target, Outcome: Converted, Todo: ic.todo}
	switch {
	case len(ic.failed) > 0:
		it.Outcome, it.Reasons, it.Target = NotConverted, append(ic.failed, ic.losses...), ""
	case len(ic.losses) > 0:
		it.Outcome, it.Reasons = Lossy, ic.losses
	}
	return it
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
	c := &converter{opts: opts, res: &Result{}, sinkNames: map[string]string{}, names: map[string]bool{}, remediations: map[string]bool{}}

	set := c.convertSettings(doc)
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
		s := section{key: "namedCustomPlaybooks"}
		for _, k := range sortedKeys(named) {
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
			if pb, ok := c.convertPlaybook(where, item, disabled); ok {
				out = append(out, pb)
			}
		}
	}

	// disabledPlaybooks: names of medic's built-in playbooks are disabled
	// in medic too; names of converted-away playbooks need nothing.
	var medicDisabled []string
	for _, n := range sortedKeys(disabled) {
		it := Item{Kind: KindDisabled, Where: "disabledPlaybooks", Name: n, Outcome: Converted}
		switch {
		case slices.Contains(opts.BuiltinPlaybooks, n):
			medicDisabled = append(medicDisabled, n)
			it.Target = n
		case c.names[n]:
			it.Reasons = []string{"the playbook is not carried over"}
		default:
			it.Outcome = Lossy
			it.Reasons = []string{"medic has no playbook of that name, so there is nothing to disable"}
			it.Todo = "if one of medic's built-in playbooks (builtin-*) does what the Robusta one did, add it to playbooks.disabled"
		}
		c.res.Items = append(c.res.Items, it)
	}

	c.res.Remediations = sortedKeys(c.remediations)
	var err error
	if c.res.Playbooks, err = playbooksYAML(out, source); err != nil {
		return nil, err
	}
	if c.res.Config, err = configYAML(sinkSpecs, medicDisabled, c.slack, set, c.res.Remediations, source); err != nil {
		return nil, err
	}
	if c.res.HelmValues, err = helmValuesYAML(sinkSpecs, out, medicDisabled, c.slack, set, c.res.Remediations, source); err != nil {
		return nil, err
	}
	return c.res, nil
}

var invalidNameChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// convertPlaybook converts one playbook and records it and its triggers
// and actions.
func (c *converter) convertPlaybook(where string, item any, disabled map[string]bool) (playbookOut, bool) {
	var ic itemConv
	var parts []Item
	finish := func(pb playbookOut, ok bool) (playbookOut, bool) {
		if !ok && len(ic.failed) == 0 {
			ic.fail("not converted")
		}
		if ok {
			// A playbook is as good as its worst part.
			for _, p := range parts {
				if p.Outcome != Converted {
					ic.lose("%s `%s` %s", p.Kind, p.Name, strings.ReplaceAll(string(p.Outcome), "_", " "))
				}
			}
		} else {
			// Its converted parts do not run either.
			for i := range parts {
				if parts[i].Outcome != NotConverted {
					parts[i].Outcome, parts[i].Target = NotConverted, ""
					parts[i].Reasons = append(parts[i].Reasons, "its playbook is not converted")
				}
			}
		}
		name, _ := item.(map[string]any)["name"].(string)
		target := ""
		if ok {
			target = pb.Name
		}
		c.res.Items = append(c.res.Items, ic.item(KindPlaybook, where, name, target))
		c.res.Items = append(c.res.Items, parts...)
		return pb, ok
	}
	m, ok := item.(map[string]any)
	if !ok {
		item = map[string]any{}
		ic.fail("not a playbook (a mapping with triggers and actions)")
		return finish(playbookOut{}, false)
	}
	name, _ := m["name"].(string)
	if name != "" {
		where = fmt.Sprintf("%s (%s)", where, name)
	}
	if disabled[name] {
		c.names[name] = true // handled: disabledPlaybooks need not mention it again
		c.res.Items = append(c.res.Items, Item{Kind: KindPlaybook, Where: where, Name: name, Outcome: Converted,
			Reasons: []string{"listed in disabledPlaybooks: not carried over"}})
		return playbookOut{}, false
	}
	pb := playbookOut{Name: name}
	if pb.Name == "" {
		pb.Name = strings.NewReplacer("[", "-", "]", "", ".", "-").Replace(where)
	}
	// A rename is not a loss: the report says the new name as the target.
	pb.Name = strings.Trim(invalidNameChars.ReplaceAllString(pb.Name, "-"), "-._")
	for base, n := pb.Name, 2; c.names[pb.Name]; n++ {
		pb.Name = fmt.Sprintf("%s-%d", base, n)
	}
	for _, k := range sortedKeys(m) {
		switch k {
		case "name", "triggers", "actions", "sinks", "stop":
		case "description":
			pb.Description, _ = m[k].(string)
		default:
			ic.lose("key %q dropped: medic playbooks have no such setting", k)
		}
	}
	pb.Stop, _ = m["stop"].(bool)

	for _, t := range asList(m["triggers"]) {
		it, conv := c.convertTrigger(where, t)
		parts = append(parts, it)
		if conv != nil {
			pb.Triggers = append(pb.Triggers, conv)
		}
	}
	lostEssential := false
	for _, a := range asList(m["actions"]) {
		it, conv, essential := c.convertAction(where, a)
		parts = append(parts, it)
		if conv != nil {
			pb.Actions = append(pb.Actions, conv)
		} else if essential != "" {
			lostEssential = true
			ic.fail("action `%s` is not converted: %s", it.Name, essential)
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
			ic.fail("none of its sinks (%s) is converted; it would go to the default sinks instead", strings.Join(dropped, ", "))
			ic.todo = "convert one of its sinks, or name a medic sink in the playbook"
			return finish(pb, false)
		}
		if len(dropped) > 0 {
			ic.lose("sinks %s dropped (not converted)", strings.Join(dropped, ", "))
		}
	}
	switch {
	case lostEssential:
		return finish(pb, false)
	case len(pb.Triggers) == 0:
		ic.fail("no trigger could be converted")
		return finish(pb, false)
	case len(pb.Actions) == 0:
		ic.fail("no action could be converted")
		return finish(pb, false)
	}
	// The whole playbook must load in medic, under a policy that allows
	// exactly the remediation actions it names: the operator opts in to
	// those (the generated configuration only suggests the block).
	remediations := remediationsOf(pb)
	data, err := yaml.Marshal([]playbookOut{pb})
	if err == nil {
		policy := actions.Remediation{Enabled: len(remediations) > 0, Allowed: remediations, RequireApproval: true}
		_, err = playbooks.Build([]playbooks.File{{Path: "converted.yaml", Data: data}}, playbooks.Options{Plugins: c.opts.Plugins, Remediation: policy})
	}
	if err != nil {
		ic.fail("the converted playbook does not load in medic: %v", err)
		return finish(pb, false)
	}
	if len(remediations) > 0 {
		ic.lose("changes the cluster: needs remediation.enabled: true and remediation.allowed: [%s] in medic's configuration "+
			"(suggested, commented out, in the generated configuration); runs after a person approves it in Slack (remediation.require_approval, default true)",
			strings.Join(remediations, ", "))
		ic.todo = "opt in to the remediation block suggested in the generated configuration, and list the Slack approvers in remediation.approvers"
		for _, r := range remediations {
			c.remediations[r] = true
		}
	}
	c.names[pb.Name] = true
	return finish(pb, true)
}

// remediationsOf lists the remediation actions a converted playbook names,
// sorted and without repeats.
func remediationsOf(pb playbookOut) []string {
	var out []string
	for _, a := range pb.Actions {
		for name := range a {
			if actions.IsRemediation(name) && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
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

func (c *converter) convertTrigger(where string, item any) (Item, map[string]any) {
	var ic itemConv
	name, p, ok := single(item)
	if !ok {
		ic.fail("a trigger is not `- on_x: {parameters}`")
		return ic.item(KindTrigger, where, fmt.Sprint(item), ""), nil
	}
	row := triggerFor(name)
	ic.todo = row.todo
	switch {
	case row.medic == "":
		ic.fail("medic has no equivalent")
		return ic.item(KindTrigger, where, name, ""), nil
	case !c.opts.HasTrigger(row.medic):
		_, mapped := triggerRows[name]
		lacks(&ic, row.medic, mapped)
		return ic.item(KindTrigger, where, name, ""), nil
	}
	p = clone(p)
	if row.params != nil {
		p = row.params(p)
	}
	if sc, ok := p["scope"]; ok {
		conv, err := convertScope(sc)
		if err != nil {
			ic.fail("scope: %v (dropping it would make the playbook fire more often)", err)
			return ic.item(KindTrigger, where, name, ""), nil
		}
		p["scope"] = conv
	}
	if err := buildWith(row.medic, p, c.triggersBuild); err != nil {
		ic.fail("%v (dropping a condition would make the playbook fire more often)", err)
		ic.todo = "rewrite the condition with the parameters medic's trigger has (medic playbooks schema)"
		return ic.item(KindTrigger, where, name, ""), nil
	}
	return ic.item(KindTrigger, where, name, row.medic), map[string]any{row.medic: p}
}

// convertAction converts one action; essential says why the playbook
// cannot do without it ("" when it can).
func (c *converter) convertAction(where string, item any) (Item, map[string]any, string) {
	var ic itemConv
	name, p, ok := single(item)
	if !ok {
		ic.fail("an action is not `- action_name: {parameters}`")
		return ic.item(KindAction, where, fmt.Sprint(item), ""), nil, ""
	}
	row := actionFor(name)
	ic.todo = row.todo
	if len(row.medic) == 0 {
		ic.fail("medic has no equivalent")
		return ic.item(KindAction, where, name, ""), nil, row.essential
	}
	target := ""
	for i, t := range row.medic {
		if c.opts.HasAction(t) {
			target = t
			if i > 0 {
				ic.lose("medic lacks `%s`; mapped to `%s`: %s", row.medic[0], t, row.fallbackLoss)
			}
			break
		}
	}
	if target == "" {
		_, mapped := actionRows[name]
		lacks(&ic, row.medic[0], mapped)
		return ic.item(KindAction, where, name, ""), nil, row.essential
	}
	if row.loss != "" {
		ic.lose("%s", row.loss)
	}
	p = clone(p)
	if row.params != nil {
		p = row.params(&ic, p)
		if len(ic.failed) > 0 {
			return ic.item(KindAction, where, name, ""), nil, row.essential
		}
	}
	// Drop what medic's action does not know, and say so; stop at errors
	// that are not about unknown parameters.
	for range 20 {
		err := buildWith(target, p, c.actionsBuild)
		if err == nil {
			return ic.item(KindAction, where, name, target), map[string]any{target: p}, row.essential
		}
		key := unknownParam(err)
		if key == "" || !hasKey(p, key) {
			ic.fail("%v", err)
			return ic.item(KindAction, where, name, ""), nil, row.essential
		}
		delete(p, key)
		ic.lose("parameter %q dropped: medic's %s has no such parameter", key, target)
	}
	ic.fail("too many unknown parameters")
	return ic.item(KindAction, where, name, ""), nil, row.essential
}

// lacks records that medic has no target: one the mapping names (other
// branches of medic add them) or a name the mapping does not know.
func lacks(ic *itemConv, target string, mapped bool) {
	if mapped {
		ic.fail("medic lacks `%s`", target)
		if ic.todo == "" {
			ic.todo = "import again with a medic that has it"
		}
		return
	}
	ic.fail("medic has no `%s`", target)
	if ic.todo == "" {
		ic.todo = "find a medic one that does the same (medic playbooks schema), or open an issue"
	}
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
// namespace, labels, annotations, severity}) into medic's. Robusta matches
// name and namespace as regular expressions from the start (re.match),
// labels as k=v selectors; medic's patterns match the whole value.
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
		case "identifier":
			pat, err := identifierPattern(stringsOf(m[k]))
			if err != nil {
				return nil, err
			}
			out[k] = pat
		case "title":
			return nil, errors.New(`"title" rules are not converted: medic's finding titles are not Robusta's (a resolved alert's title has no "[RESOLVED]"), so the rule would not match the same findings; to stop resolved notifications set the sink's send_resolved: false`)
		case "severity":
			var alts []string
			for _, x := range stringsOf(m[k]) {
				sev, ok := severityMap[strings.ToUpper(x)]
				if !ok {
					return nil, fmt.Errorf("severity: %q is not a Robusta severity", x)
				}
				alts = append(alts, sev)
			}
			if len(alts) == 0 {
				return nil, errors.New("severity: expected a string or a list of strings")
			}
			out[k] = strings.Join(alts, "|")
		case "labels", "annotations":
			kv := map[string]any{}
			for _, sel := range stringsOf(m[k]) {
				for term := range strings.SplitSeq(sel, ",") {
					key, val, ok := strings.Cut(strings.TrimSpace(term), "=")
					if !ok || strings.ContainsAny(key, "!") || strings.HasPrefix(val, "=") || strings.HasPrefix(val, "~") {
						return nil, fmt.Errorf("%s: %q: medic's scope matches key=value terms only (no !=, no regex operator); write the exclusion as an exclude rule", k, strings.TrimSpace(term))
					}
					key = strings.TrimSpace(key)
					if prev, dup := kv[key]; dup && prev != regexp.QuoteMeta(strings.TrimSpace(val)) {
						return nil, fmt.Errorf("%s: %q is given two values", k, key)
					}
					kv[key] = regexp.QuoteMeta(strings.TrimSpace(val))
				}
			}
			if len(kv) == 0 {
				return nil, fmt.Errorf("%s: expected a selector string", k)
			}
			out[k] = kv
		default:
			return nil, fmt.Errorf("%q rules are not converted (the importer carries name, namespace, severity, identifier, labels, annotations)", k)
		}
	}
	return out, nil
}

// robustaIdentifiers are the identifiers (aggregation keys) of Robusta's
// built-in findings that medic raises as events of its own kind. An alert's
// identifier is its name in both.
var robustaIdentifiers = map[string]event.Kind{
	"CrashLoopBackoff":            event.KindPodCrashLoop,
	"report_crash_loop":           event.KindPodCrashLoop,
	"ImagePullBackoff":            event.KindImagePullBackoff,
	"image_pull_backoff_reporter": event.KindImagePullBackoff,
}

// medicKinds are the kinds medic's identifier falls back to for an event
// that is not an alert.
var medicKinds = []event.Kind{
	event.KindPrometheusAlert, event.KindPodCrashLoop, event.KindPodOOMKilled, event.KindContainerOOMKilled,
	event.KindImagePullBackoff, event.KindPodEvicted, event.KindJobFailure, event.KindNodeNotReady,
	event.KindKubernetesWarningEvent, event.KindKubernetesResource, event.KindManual, event.KindSchedule,
}

// identifierPattern converts Robusta's identifier values (regular
// expressions matched from the start, re.match) into a medic pattern
// meaning the same: each value as a prefix, plus medic's kind of each
// Robusta built-in finding a value matches. It refuses a value that would
// match one of medic's kinds Robusta did not mean: the rule would then
// include more (or exclude differently) than before.
func identifierPattern(values []string) (string, error) {
	if len(values) == 0 {
		return "", errors.New("identifier: expected a string or a list of strings")
	}
	var alts []string
	for _, v := range values {
		robusta, err := regexp.Compile(`^(?:` + v + `)`)
		if err != nil {
			return "", fmt.Errorf("identifier: %q is not a regular expression: %w", v, err)
		}
		meant := map[event.Kind]bool{}
		for _, id := range sortedKeys(robustaIdentifiers) {
			if robusta.MatchString(id) {
				meant[robustaIdentifiers[id]] = true
			}
		}
		for _, k := range medicKinds {
			if robusta.MatchString(string(k)) && !meant[k] {
				return "", fmt.Errorf("identifier: %q also matches medic's event kind %q, which is not what Robusta meant by it", v, k)
			}
		}
		alts = append(alts, "(?:"+v+").*")
		for _, k := range medicKinds {
			if meant[k] {
				alts = append(alts, string(k))
			}
		}
	}
	return strings.Join(alts, "|"), nil
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

type buildFunc func(name string, node *yaml.Node) error

func (c *converter) triggersBuild(name string, node *yaml.Node) error {
	_, err := c.opts.Plugins.Triggers.Build(name, node)
	return err
}

func (c *converter) actionsBuild(name string, node *yaml.Node) error {
	_, err := c.opts.Plugins.Actions.Build(name, node)
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

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
