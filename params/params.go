// Package params decodes the YAML parameters of triggers, actions and sinks
// strictly: a key that the target struct does not declare is an error that
// names its line, so a typo in a playbook is caught at load time instead of
// silently doing nothing at 3 a.m.
//
// yaml.v3's own KnownFields works only on a Decoder over a whole document;
// parameters arrive as sub-nodes of a larger file, and re-encoding them would
// lose their line numbers. Hence this small walker over the node tree.
package params

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a problem at a place in a YAML document.
type Error struct {
	Line   int
	Column int
	Msg    string
	// Field is the dotted path of the offending key below the node that
	// UnknownKeys started from ("http.addrr", "sinks[0].name"); empty when
	// not known.
	Field string
	// Suggestion is the known key or name closest to a misspelt one, for
	// tools that print "did you mean" their own way (medic config check --json).
	Suggestion string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// Errorf returns an *Error positioned at node.
func Errorf(node *yaml.Node, format string, args ...any) *Error {
	e := &Error{Msg: fmt.Sprintf(format, args...)}
	if node != nil {
		e.Line, e.Column = node.Line, node.Column
	}
	return e
}

// Validator is implemented by parameter structs that check their own values
// after decoding.
type Validator interface {
	Validate() error
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// Decode decodes node into out, which must be a pointer to a struct. A nil
// or null node leaves out unchanged, so callers set defaults first.
func Decode(node *yaml.Node, out any) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("params.Decode: out must be a non-nil pointer, got %T", out)
	}
	if node != nil && !isNull(node) {
		if node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
			node = node.Content[0]
		}
		if err := checkKnown(node, rv.Type().Elem()); err != nil {
			return err
		}
		if err := node.Decode(out); err != nil {
			return typeError(node, err)
		}
	}
	if v, ok := out.(Validator); ok {
		if err := v.Validate(); err != nil {
			var pe *Error
			if errors.As(err, &pe) {
				return err
			}
			line := 0
			if node != nil {
				line = node.Line
			}
			return &Error{Line: line, Msg: err.Error()}
		}
	}
	return nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

var yamlLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// typeError turns yaml's multi-line TypeError into an *Error carrying the
// first problem's line, keeping the others in the message.
func typeError(node *yaml.Node, err error) error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe // already positioned by a custom unmarshaler
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return Errorf(node, "%v", err)
	}
	first := &Error{Line: node.Line, Column: node.Column}
	msgs := make([]string, 0, len(te.Errors))
	for i, m := range te.Errors {
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			if i == 0 {
				first.Line, _ = strconv.Atoi(sm[1])
				m = sm[2]
			}
		}
		msgs = append(msgs, strings.Replace(m, "cannot unmarshal", "cannot use", 1))
	}
	first.Msg = strings.Join(msgs, "; ")
	return first
}

func checkKnown(node *yaml.Node, t reflect.Type) error {
	switch errs := unknownKeys(node, t, "", "parameter", nil); len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	default:
		return ErrorList(errs)
	}
}

// ErrorList is several problems found in one pass, in document order, so a
// file's every misspelt parameter shows in one run. errors.As finds the
// first *Error in it, so callers that know only *Error still get a line.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap exposes the problems to errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// UnknownKeys walks node against type t (a struct, or a slice or map of
// them) and returns an *Error for every key t does not declare, in document
// order, each with its Field path and, when one is close, a Suggestion.
// what names the keys in messages ("key", "parameter"). Types that unmarshal
// themselves are not entered: they decide what they accept.
func UnknownKeys(node *yaml.Node, t reflect.Type, what string) []*Error {
	if node != nil && node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
		node = node.Content[0]
	}
	if node == nil {
		return nil
	}
	return unknownKeys(node, t, "", what, nil)
}

func unknownKeys(node *yaml.Node, t reflect.Type, path, what string, errs []*Error) []*Error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return errs // the type decides for itself
	}
	switch t.Kind() {
	case reflect.Struct:
		if node.Kind != yaml.MappingNode {
			return errs // node.Decode reports the type mismatch with its line
		}
		fields := structFields(t)
		for i := 0; i+1 < len(node.Content); i += 2 {
			key, val := node.Content[i], node.Content[i+1]
			if key.Value == "<<" {
				continue
			}
			field := joinPath(path, key.Value)
			ft, ok := fields[key.Value]
			if !ok {
				known := keysOf(fields)
				e := Errorf(key, "unknown %s %q%s", what, key.Value, Hint(key.Value, known))
				e.Field, e.Suggestion = field, Suggest(key.Value, known)
				errs = append(errs, e)
				continue
			}
			errs = unknownKeys(val, ft, field, what, errs)
		}
	case reflect.Slice, reflect.Array:
		if node.Kind == yaml.SequenceNode {
			for i, item := range node.Content {
				errs = unknownKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), what, errs)
			}
		}
	case reflect.Map:
		if node.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(node.Content); i += 2 {
				errs = unknownKeys(node.Content[i+1], t.Elem(), joinPath(path, node.Content[i].Value), what, errs)
			}
		}
	}
	return errs
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func keysOf(fields map[string]reflect.Type) []string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Fields maps the YAML keys of struct type t to their field types, following
// ",inline" fields, exactly as Decode reads them (the playbook JSON schema
// is built from it, so the two cannot disagree).
func Fields(t reflect.Type) map[string]reflect.Type { return structFields(t) }

// structFields maps YAML keys to field types, following ",inline" fields.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// Names lists the YAML keys a parameter struct accepts, sorted; used by the
// JSON schema and by "did you mean".
func Names(v any) []string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	fields := structFields(t)
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Suggest returns the name in known closest to got, or "" when none is
// close enough to be the likely intent: within two edits, or a fifth of
// got's length for long names ("prometheus_alert" → "on_prometheus_alert").
func Suggest(got string, known []string) string {
	best, bestDist := "", max(3, len(got)/5+1)
	for _, name := range known {
		if d := distance(got, name); d < bestDist || (d == bestDist && name < best) {
			best, bestDist = name, d
		}
	}
	return best
}

// Hint is the parenthesised tail of an "unknown …" message: the closest
// name as "did you mean", else the whole list, which is short enough to read.
func Hint(got string, known []string) string {
	if best := Suggest(got, known); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	if len(known) == 0 {
		return " (it takes no parameters)"
	}
	return " (known: " + strings.Join(known, ", ") + ")"
}

// distance is the Levenshtein distance; the strings are parameter names, so
// the quadratic cost does not matter.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
