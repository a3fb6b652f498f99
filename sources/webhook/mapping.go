package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/webhookevent"
)

// The mapping's expressions are CEL (github.com/google/cel-go), not jq:
// CEL is what Kubernetes itself uses for operator-written expressions
// (ValidatingAdmissionPolicy, CRD rules) so the people who write these know
// it; it is type-checked and compiled once at config load, so a typo is an
// error naming the field before medic serves; and it cannot loop, with a
// cost limit on top, so a hostile body cannot make an expression run long.
// jq (gojq) reads nicely for JSON but is Turing-complete (`def f: f; f`)
// and reports its errors only when it runs.

// Fields lists the event fields a mapping can set, in the order they are
// documented. title is required; the rest have defaults.
var Fields = []string{
	"title", "description", "severity", "status", "id", "starts_at", "url",
	"labels", "annotations",
	"subject.kind", "subject.namespace", "subject.name", "subject.container", "subject.node",
}

// costLimit bounds one expression's evaluation (CEL's abstract cost units;
// a field access is 1). Generous for any mapping, and a ceiling for
// expressions that iterate a large body.
const costLimit = 1_000_000

var celEnv = func() *cel.Env {
	env, err := cel.NewEnv(
		// body is the request's JSON value.
		cel.Variable("body", cel.DynType),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Encoders(),
		ext.Regex(),
		ext.Lists(),
	)
	if err != nil {
		panic(fmt.Sprintf("webhook: CEL environment: %v", err))
	}
	return env
}()

// Mapping is a compiled mapping: one CEL program per field.
type Mapping struct {
	exprs    map[string]string
	programs map[string]cel.Program
}

// FieldError is a mapping expression that did not compile or did not
// evaluate to what its field takes; it names both.
type FieldError struct {
	Field string
	Expr  string
	Err   error
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("mapping.%s (%s): %v", e.Field, e.Expr, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// Compile compiles exprs (field → CEL expression). Every error names its
// field; unknown fields are errors too.
func Compile(exprs map[string]string) (*Mapping, error) {
	m := &Mapping{exprs: exprs, programs: make(map[string]cel.Program, len(exprs))}
	if strings.TrimSpace(exprs["title"]) == "" {
		return nil, errors.New("mapping.title: required (a CEL expression over body, e.g. body.message)")
	}
	for _, field := range slices.Sorted(maps.Keys(exprs)) {
		expr := exprs[field]
		if !slices.Contains(Fields, field) {
			return nil, fmt.Errorf("mapping.%s: not a field medic maps (known: %s)", field, strings.Join(Fields, ", "))
		}
		ast, iss := celEnv.Compile(expr)
		if iss.Err() != nil {
			return nil, &FieldError{Field: field, Expr: expr, Err: iss.Err()}
		}
		prg, err := celEnv.Program(ast, cel.CostLimit(costLimit), cel.InterruptCheckFrequency(100))
		if err != nil {
			return nil, &FieldError{Field: field, Expr: expr, Err: err}
		}
		m.programs[field] = prg
	}
	return m, nil
}

// Event evaluates the mapping over a decoded body. source is the event's
// source ("webhook/<name>"); raw is the body as received, whose hash is the
// event's identity when the mapping sets no id (a retried POST is then
// the same event).
func (m *Mapping) Event(source string, body any, raw []byte, receivedAt time.Time) (event.Event, error) {
	vars := map[string]any{"body": body}
	str := func(field string) (string, error) {
		v, ok, err := m.eval(field, vars)
		if err != nil || !ok {
			return "", err
		}
		return m.toString(field, v)
	}
	ev := event.Event{Kind: webhookevent.Kind, Source: source, Status: event.StatusFiring, Severity: event.SeverityWarning,
		ReceivedAt: receivedAt.UTC(), StartsAt: receivedAt.UTC()}
	var err error
	set := map[string]*string{
		"title": &ev.Title, "description": &ev.Description, "url": &ev.GeneratorURL,
		"subject.kind": &ev.Subject.Kind, "subject.namespace": &ev.Subject.Namespace, "subject.name": &ev.Subject.Name,
		"subject.container": &ev.Subject.Container, "subject.node": &ev.Subject.Node,
	}
	for _, field := range Fields {
		if dst, ok := set[field]; ok {
			if *dst, err = str(field); err != nil {
				return event.Event{}, err
			}
		}
	}
	if ev.Title == "" {
		return event.Event{}, &FieldError{Field: "title", Expr: m.exprs["title"], Err: errors.New("evaluated to an empty string")}
	}
	if s, err := str("severity"); err != nil {
		return event.Event{}, err
	} else if s != "" {
		ev.Severity = event.ParseSeverity(s)
	}
	if s, err := str("status"); err != nil {
		return event.Event{}, err
	} else if s != "" {
		ev.Status = parseStatus(s)
	}
	if ev.Labels, err = m.stringMap("labels", vars); err != nil {
		return event.Event{}, err
	}
	if ev.Annotations, err = m.stringMap("annotations", vars); err != nil {
		return event.Event{}, err
	}
	if v, ok, err := m.eval("starts_at", vars); err != nil {
		return event.Event{}, err
	} else if ok {
		if ev.StartsAt, err = m.toTime(v); err != nil {
			return event.Event{}, err
		}
	}
	id, err := str("id")
	if err != nil {
		return event.Event{}, err
	}
	if id == "" {
		sum := sha256.Sum256(raw)
		id = hex.EncodeToString(sum[:16])
	}
	ev.Fingerprint = id
	// The ID leaves the time out: the mapping's id (or the body) already
	// names one occurrence, and a retry received later must keep its ID.
	ev.ID = event.NewID(source, id, ev.Status, time.Time{})
	return ev, nil
}

// eval runs field's program; ok is false when the mapping does not set it
// or the expression yields null or an empty optional.
func (m *Mapping) eval(field string, vars map[string]any) (ref.Val, bool, error) {
	prg, ok := m.programs[field]
	if !ok {
		return nil, false, nil
	}
	v, _, err := prg.Eval(vars)
	if err != nil {
		return nil, false, &FieldError{Field: field, Expr: m.exprs[field], Err: err}
	}
	if opt, isOpt := v.(*types.Optional); isOpt {
		if !opt.HasValue() {
			return nil, false, nil
		}
		v = opt.GetValue()
	}
	if v == types.NullValue {
		return nil, false, nil
	}
	return v, true, nil
}

// toString accepts strings and scalars (a number, a bool), which read the
// same as text; lists and maps are errors.
func (m *Mapping) toString(field string, v ref.Val) (string, error) {
	switch v.Type() {
	case types.StringType:
		return v.Value().(string), nil
	case types.IntType, types.UintType, types.DoubleType, types.BoolType:
		return fmt.Sprint(v.ConvertToType(types.StringType).Value()), nil
	}
	return "", &FieldError{Field: field, Expr: m.exprs[field], Err: fmt.Errorf("evaluated to a %s, not a string", v.Type().TypeName())}
}

func (m *Mapping) stringMap(field string, vars map[string]any) (map[string]string, error) {
	v, ok, err := m.eval(field, vars)
	if err != nil || !ok {
		return nil, err
	}
	native, err := v.ConvertToNative(mapStringAnyType)
	if err != nil {
		return nil, &FieldError{Field: field, Expr: m.exprs[field], Err: fmt.Errorf("evaluated to a %s, not a map with string keys", v.Type().TypeName())}
	}
	return stringify(field, m.exprs[field], native.(map[string]any))
}

var mapStringAnyType = reflect.TypeFor[map[string]any]()

func stringify(field, expr string, in map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(in))
	for k, v := range in {
		switch v := v.(type) {
		case string:
			if v != "" { // as in Prometheus, an empty label is no label
				out[k] = v
			}
		case nil, structpb.NullValue:
		case bool, float64, int64, uint64, int, float32:
			out[k] = fmt.Sprint(v)
		default:
			return nil, &FieldError{Field: field, Expr: expr, Err: fmt.Errorf("the value of %q is a %T, not a string", k, v)}
		}
	}
	return out, nil
}

func (m *Mapping) toTime(v ref.Val) (time.Time, error) {
	switch v.Type() {
	case types.TimestampType:
		return v.Value().(time.Time).UTC(), nil
	case types.StringType:
		t, err := time.Parse(time.RFC3339Nano, v.Value().(string))
		if err != nil {
			return time.Time{}, &FieldError{Field: "starts_at", Expr: m.exprs["starts_at"], Err: fmt.Errorf("not an RFC 3339 time: %w", err)}
		}
		return t.UTC(), nil
	}
	return time.Time{}, &FieldError{Field: "starts_at", Expr: m.exprs["starts_at"], Err: fmt.Errorf("evaluated to a %s, not a timestamp or RFC 3339 string", v.Type().TypeName())}
}

// parseStatus reads the words tools use for "it is over" as resolved and
// everything else as firing.
func parseStatus(s string) event.Status {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "resolved", "ok", "healthy", "succeeded", "success", "synced", "recovered":
		return event.StatusResolved
	}
	return event.StatusFiring
}
