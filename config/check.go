package config

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/params"
)

// Problem is one thing wrong with a configuration, at its place in the file
// when it has one (Line 0: the problem is not in the file, e.g. an
// environment variable or a setting left at an invalid default).
type Problem struct {
	File       string `json:"file"`
	Line       int    `json:"line"`
	Column     int    `json:"column"`
	Field      string `json:"field"`
	Message    string `json:"message"`
	Suggestion string `json:"suggestion,omitempty"`
}

// String is FILE:LINE:COLUMN: field: message, the form editors jump to.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, max(p.Column, 1))
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Check judges the configuration at path (none when empty) as Load would,
// but reports every problem it can instead of the first: YAML syntax (after
// naming tabs in the indentation it goes on as if they were spaces), every
// unknown key with the closest known one, every value of the wrong type
// (each top-level section is decoded on its own, so one bad section does
// not hide the others), and every invalid value Validate finds, each at its
// field's line, validators' included (see Validator).
func Check(path string, environ []string, validators ...Validator) []Problem {
	cfg := Default()
	var probs []Problem
	var root *yaml.Node
	if path != "" {
		var stop bool
		root, probs, stop = parseForCheck(path)
		if stop {
			return probs
		}
		probs = append(probs, decodeSections(path, root, &cfg)...)
	}
	probs = append(probs, validationProblems(path, root, &cfg, environ, validators)...)
	sort.SliceStable(probs, func(i, j int) bool { return lineKey(probs[i]) < lineKey(probs[j]) })
	return probs
}

// parseForCheck reads and parses the file. stop says the problems found
// leave nothing further to check.
func parseForCheck(path string) (root *yaml.Node, probs []Problem, stop bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, []Problem{{File: path, Message: fmt.Sprintf("read config: %v", err)}}, true
	}
	if errs := params.SyntaxErrors(raw); len(errs) > 0 {
		probs = fromParamErrors(path, errs, nil)
		untabbed, ok := params.UntabIndent(raw)
		if !params.OnlyTabs(errs) || !ok {
			return nil, probs, true
		}
		raw = untabbed // named the tabs; now check the rest as if they were spaces
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil { // cannot happen after SyntaxErrors
		return nil, append(probs, Problem{File: path, Message: fmt.Sprintf("invalid YAML: %v", err)}), true
	}
	if len(doc.Content) != 1 {
		return nil, probs, false // an empty file: the defaults
	}
	root = doc.Content[0]
	for i := range probs { // the tabs, now that there is a tree to name their fields
		probs[i].Field, _ = fieldAtLine(root, probs[i].Line)
	}
	return root, probs, false
}

// lineKey orders problems by line, those outside the file last.
func lineKey(p Problem) int {
	if p.Line == 0 {
		return math.MaxInt
	}
	return p.Line
}

// maxValidationRounds bounds validationProblems; a configuration with more
// invalid values than this is reported in parts.
const maxValidationRounds = 50

// validationProblems runs Load's later steps, and, since Validate stops at
// its first error, puts the field it names back to its default and runs
// them again, until they pass or the named field cannot be reset. That lists
// every invalid value without a second copy of the rules.
func validationProblems(path string, root *yaml.Node, cfg *Config, environ []string, validators []Validator) []Problem {
	var probs []Problem
	def := Default()
	seen := map[string]bool{}
	for range maxValidationRounds {
		c := *cfg // complete fills derived defaults; start each round afresh
		err := c.complete(environ, validators)
		if err == nil {
			break
		}
		p, field := placeError(path, root, err)
		if seen[p.String()] {
			break
		}
		seen[p.String()] = true
		probs = append(probs, p)
		if field == "" || !errors.Is(err, errInvalid) || !resetField(cfg, &def, field) {
			break
		}
	}
	return probs
}

// resetField sets the field at path (yaml names, "sinks[2]" for a list
// item) in cfg to its value in def; a list item resets the whole list.
func resetField(cfg, def *Config, path string) bool {
	dst, src := reflect.ValueOf(cfg).Elem(), reflect.ValueOf(def).Elem()
	for _, seg := range segmentRE.FindAllStringSubmatch(path, -1) {
		if seg[1] == "" || dst.Kind() != reflect.Struct {
			break // an index: reset the list that holds it
		}
		i := fieldIndex(dst.Type(), seg[1])
		if i < 0 {
			return false
		}
		dst, src = dst.Field(i), src.Field(i)
	}
	if reflect.DeepEqual(dst.Interface(), src.Interface()) {
		return false // resetting would change nothing: stop rather than loop
	}
	dst.Set(src)
	return true
}

func fieldIndex(t reflect.Type, name string) int {
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag == name {
			return i
		}
	}
	return -1
}

// decodeSections reports unknown keys, then decodes each known top-level
// key separately, collecting type errors.
func decodeSections(path string, root *yaml.Node, cfg *Config) []Problem {
	if root == nil || isNullNode(root) {
		return nil // an empty file: the defaults
	}
	if root.Kind != yaml.MappingNode {
		return []Problem{{File: path, Line: root.Line, Column: root.Column, Message: "the configuration must be a mapping of settings (key: value)"}}
	}
	probs := fromParamErrors(path, params.UnknownKeys(root, reflect.TypeFor[Config](), "key"), root)
	known := params.Fields(reflect.TypeFor[Config]())
	def := Default()
	for i := 0; i+1 < len(root.Content); i += 2 {
		key := root.Content[i]
		if _, ok := known[key.Value]; !ok {
			continue // reported above
		}
		section := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: root.Content[i : i+2]}
		if err := section.Decode(cfg); err != nil {
			probs = append(probs, decodeProblems(path, root, key, err)...)
			var te *yaml.TypeError
			if !errors.As(err, &te) {
				// The decode stopped part-way; what it left would only
				// fail Validate for the same reason.
				resetField(cfg, &def, key.Value)
			}
		}
	}
	return probs
}

func isNullNode(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

var typeErrRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// decodeProblems turns one section's decode error into problems: yaml's
// TypeError lists every bad value with its line; a type that unmarshals
// itself (sinks, playbook_repos) returns a positioned *params.Error.
func decodeProblems(path string, root, key *yaml.Node, err error) []Problem {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var probs []Problem
		for _, m := range te.Errors {
			p := Problem{File: path, Line: key.Line, Column: key.Column, Field: key.Value, Message: m}
			if sm := typeErrRE.FindStringSubmatch(m); sm != nil {
				p.Line, _ = strconv.Atoi(sm[1])
				p.Message = sm[2]
				p.Field, p.Column = fieldAtLine(root, p.Line)
			}
			p.Message = typeMessage(p.Message)
			probs = append(probs, p)
		}
		return probs
	}
	var list params.ErrorList
	if errors.As(err, &list) {
		return fromParamErrors(path, fromTop(list), root)
	}
	var pe *params.Error
	if errors.As(err, &pe) && pe.Line > 0 {
		return fromParamErrors(path, fromTop([]*params.Error{pe}), root)
	}
	return []Problem{{File: path, Line: key.Line, Column: key.Column, Field: key.Value, Message: err.Error()}}
}

var cannotRE = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (.+)$")

// typeWords says what a Go type is in the words of a YAML file.
var typeWords = map[string]string{
	"time.Duration": "a duration (e.g. 30s, 5m, 1h)",
	"int":           "a whole number", "int64": "a whole number", "float64": "a number",
	"bool":   "true or false",
	"string": "a string",
}

// typeMessage rewrites yaml's "cannot unmarshal !!str `soon` into
// time.Duration" as "\"soon\" is not a duration (e.g. 30s, 5m, 1h)".
func typeMessage(m string) string {
	sm := cannotRE.FindStringSubmatch(m)
	if sm == nil {
		return strings.Replace(m, "cannot unmarshal", "cannot use", 1)
	}
	want, ok := typeWords[sm[3]]
	switch {
	case !ok && strings.HasPrefix(sm[3], "[]"):
		want = "a list"
	case !ok && strings.HasPrefix(sm[3], "map["):
		want = "a mapping (key: value)"
	case !ok:
		want = sm[3]
	}
	got := strconv.Quote(sm[2])
	if sm[1] == "seq" || sm[1] == "map" {
		got = "a " + map[string]string{"seq": "list", "map": "mapping"}[sm[1]]
	}
	return fmt.Sprintf("%s is not %s", got, want)
}

// fromTop drops the field paths of errors from a nested decode, which are
// relative to where it began, so fromParamErrors finds them from the top.
func fromTop(errs []*params.Error) []*params.Error {
	out := make([]*params.Error, len(errs))
	for i, e := range errs {
		c := *e
		c.Field = ""
		out[i] = &c
	}
	return out
}

func fromParamErrors(path string, errs []*params.Error, root *yaml.Node) []Problem {
	probs := make([]Problem, 0, len(errs))
	for _, e := range errs {
		p := Problem{File: path, Line: e.Line, Column: e.Column, Field: e.Field, Message: e.Msg, Suggestion: e.Suggestion}
		if root != nil && (p.Field == "" || p.Column == 0) {
			field, col := fieldAt(root, e.Line, e.Column)
			p.Field = cmp.Or(field, p.Field)
			p.Column = cmp.Or(p.Column, col)
		}
		probs = append(probs, p)
	}
	return probs
}

// fieldAtLine returns the path of the first key or list item on line, and
// the column of its value, for errors that carry only a line.
func fieldAtLine(root *yaml.Node, line int) (string, int) {
	return fieldAt(root, line, 0)
}

// fieldAt is fieldAtLine preferring the key at column col, for lines that
// hold several keys ({a: 1, b: 2}).
func fieldAt(root *yaml.Node, line, col int) (string, int) {
	if col > 0 {
		if f, c := findKeyAt(root, line, col, true); f != "" {
			return f, c
		}
	}
	return findKeyAt(root, line, col, false)
}

// findKeyAt walks root for the first key on line (at col too when exact).
func findKeyAt(root *yaml.Node, line, col int, exact bool) (string, int) {
	var walk func(n *yaml.Node, path string) (string, int, bool)
	walk = func(n *yaml.Node, path string) (string, int, bool) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := joinField(path, k.Value)
				if k.Line == line && (!exact || k.Column == col) {
					return p, v.Column, true
				}
				if f, c, ok := walk(v, p); ok {
					return f, c, true
				}
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if item.Line == line && item.Kind == yaml.ScalarNode && !exact {
					return p, item.Column, true
				}
				if f, c, ok := walk(item, p); ok {
					return f, c, true
				}
			}
		}
		return "", 0, false
	}
	f, c, _ := walk(root, "")
	return f, c
}

func joinField(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldPrefixRE matches the field Validate names at the start of its
// errors: "http.addr: …", "sinks[1]: …", "webhook.username and …: …".
var fieldPrefixRE = regexp.MustCompile(`^([a-z_][a-z0-9_]*(?:\[\d+\])*(?:\.[a-z_][a-z0-9_]*(?:\[\d+\])*)*)((?: and [^:]+)?): (.*)$`)

// placeError positions an error of Load's later steps: at the line its
// own *params.Error carries, else at the field it names (or the closest
// ancestor present in the file).
// It also returns the field's path, "" when the error names none.
func placeError(path string, root *yaml.Node, err error) (Problem, string) {
	msg := err.Error()
	p := Problem{File: path, Message: msg}
	if path == "" {
		p.File = "(defaults and environment)"
	}
	m := fieldPrefixRE.FindStringSubmatch(msg)
	if m == nil {
		return p, ""
	}
	p.Field, p.Message = m[1]+m[2], m[3]
	var pe *params.Error
	if errors.As(err, &pe) && pe.Line > 0 {
		p.Line, p.Column, p.Message, p.Suggestion = pe.Line, pe.Column, pe.Msg, pe.Suggestion
		return p, m[1]
	}
	if n := findField(root, m[1]); n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	return p, m[1]
}

var segmentRE = regexp.MustCompile(`([a-z_][a-z0-9_]*)|\[(\d+)\]`)

// findField follows a path such as sinks[1].path from root and returns the
// node of the deepest part present in the file: the key of a mapping entry,
// the item of a list.
func findField(root *yaml.Node, path string) *yaml.Node {
	var found *yaml.Node
	n := root
	for _, seg := range segmentRE.FindAllStringSubmatch(path, -1) {
		if n == nil {
			break
		}
		var next *yaml.Node
		switch {
		case seg[1] != "" && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == seg[1] {
					found, next = n.Content[i], n.Content[i+1]
					break
				}
			}
		case seg[2] != "" && n.Kind == yaml.SequenceNode:
			if i, _ := strconv.Atoi(seg[2]); i < len(n.Content) {
				found, next = n.Content[i], n.Content[i]
			}
		}
		n = next
	}
	return found
}
