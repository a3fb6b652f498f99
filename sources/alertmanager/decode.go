// Package alertmanager receives Prometheus alerts through Alertmanager's
// webhook receiver, turns each alert into an event.Event, and provides the
// on_prometheus_alert playbook trigger that selects them.
package alertmanager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode"

	gojson "github.com/goccy/go-json"

	"github.com/prometheus/alertmanager/template"
)

// Message is Alertmanager's webhook body, field for field the same as
// github.com/prometheus/alertmanager/notify/Message (a test checks
// that both encode alike). Importing that package would link Alertmanager's
// whole notifier stack (OpenTelemetry, gRPC, every receiver: about 750
// packages) into medic for three fields.
type Message struct {
	*template.Data

	// The protocol version.
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// The two ways a body can be refused. Decode wraps one of them, so callers
// can tell a broken request (a proxy cutting the body) from a well-formed
// request that is simply not meant for this endpoint.
var (
	ErrMalformed  = errors.New("malformed JSON")
	ErrNotWebhook = errors.New("not an Alertmanager webhook message")
)

// webhookVersion is the only version of the webhook format Alertmanager has
// ever sent (since v0.8); another one would mean fields we do not know.
const webhookVersion = "4"

// wireMessage shadows Alerts so each alert is decoded on its own and an
// error can name its index. A field at depth 0 wins over the promoted one.
type wireMessage struct {
	Message
	Alerts []json.RawMessage `json:"alerts"`
}

// wireAlert shadows the timestamps so a bad one is reported with its name;
// time.Time's own error does not say which field it was.
type wireAlert struct {
	template.Alert
	StartsAt json.RawMessage `json:"startsAt"`
	EndsAt   json.RawMessage `json:"endsAt"`
}

// Decode parses and checks an Alertmanager webhook body. Its errors are
// meant to be shown to whoever sent the body (they become HTTP 400 answers),
// so they say where the problem is.
//
// An alert without a status takes the message's status: hand-written test
// payloads (prometheus-msteams' among them) leave it out, and refusing them
// would only push people to edit their tooling.
//
// The message's strings may share body's memory (copying each label and
// annotation was two thirds of the decoder's allocations): body must not be
// modified while the message, or events made from it, are in use.
func Decode(body []byte) (*Message, error) {
	if msg, ok := decodeValid(body); ok {
		return msg, nil
	}
	return decodeExplained(body)
}

// decodeValid is the hot path: one pass of goccy/go-json over the body,
// then the checks. Anything it does not accept is decoded again by
// decodeExplained, encoding/json alert by alert, which is slower but says
// what is wrong and where. goccy decodes a webhook four times as fast as
// encoding/json (it was a quarter of medic's CPU at full intake); FuzzDecode
// holds it to accepting only what decodeExplained accepts, decoded alike.
// Strings without escapes are not copied out of body (DecodeNoCopyString).
func decodeValid(body []byte) (*Message, bool) {
	msg := &Message{Data: &template.Data{}}
	if gojson.UnmarshalWithOption(body, msg, gojson.DecodeNoCopyString()) != nil || msg.Data == nil || msg.Version != webhookVersion || len(msg.Alerts) == 0 {
		return nil, false
	}
	for i := range msg.Alerts {
		a := &msg.Alerts[i]
		if a.Status == "" {
			a.Status = msg.Status
		}
		if (a.Status != "firing" && a.Status != "resolved") || len(a.Labels) == 0 {
			return nil, false
		}
	}
	return msg, true
}

// decodeExplained decodes alert by alert so that every error names its place.
func decodeExplained(body []byte) (*Message, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: the body is empty", ErrMalformed)
	}
	var wm wireMessage
	wm.Data = &template.Data{}
	if err := json.Unmarshal(body, &wm); err != nil {
		return nil, describeJSONError(body, err)
	}
	if trimmed[0] != '{' {
		// Only "null" gets here: other non-objects fail to unmarshal.
		return nil, fmt.Errorf("%w: the body is JSON %s, not an object", ErrNotWebhook, trimmed)
	}

	var problems []string
	switch wm.Version {
	case webhookVersion:
	case "":
		problems = append(problems, `"version" is missing (Alertmanager sends "4")`)
	default:
		problems = append(problems, fmt.Sprintf("version %q is not supported (expected %q)", wm.Version, webhookVersion))
	}
	switch {
	case wm.Alerts == nil:
		problems = append(problems, `"alerts" is missing`)
	case len(wm.Alerts) == 0:
		problems = append(problems, `"alerts" is empty`)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotWebhook, strings.Join(problems, "; "))
	}

	msgStatus := wm.Status
	msg := &wm.Message
	msg.Alerts = make(template.Alerts, 0, len(wm.Alerts))
	for i, raw := range wm.Alerts {
		a, err := decodeAlert(raw, msgStatus)
		if err != nil {
			return nil, fmt.Errorf("%w: alerts[%d]: %w", ErrNotWebhook, i, err)
		}
		msg.Alerts = append(msg.Alerts, a)
	}
	return msg, nil
}

func decodeAlert(raw json.RawMessage, msgStatus string) (template.Alert, error) {
	var wa wireAlert
	if err := json.Unmarshal(raw, &wa); err != nil {
		return template.Alert{}, errors.New(describeTypeError(err))
	}
	a := wa.Alert
	if err := unmarshalTime(wa.StartsAt, "startsAt", &a.StartsAt); err != nil {
		return a, err
	}
	if err := unmarshalTime(wa.EndsAt, "endsAt", &a.EndsAt); err != nil {
		return a, err
	}
	if a.Status == "" {
		a.Status = msgStatus
	}
	switch a.Status {
	case "firing", "resolved":
	case "":
		return a, errors.New(`"status" is missing and the message has none either`)
	default:
		return a, fmt.Errorf("status %q is not firing or resolved", a.Status)
	}
	if len(a.Labels) == 0 {
		return a, errors.New("the alert has no labels")
	}
	return a, nil
}

func unmarshalTime(raw json.RawMessage, name string, dst interface{ UnmarshalJSON([]byte) error }) error {
	if len(raw) == 0 {
		return nil
	}
	if err := dst.UnmarshalJSON(raw); err != nil {
		return fmt.Errorf("%s: %s is not an RFC 3339 time", name, raw)
	}
	return nil
}

// describeJSONError turns encoding/json's errors into sentences that point
// at the problem: a line and column for syntax errors, a field for a value
// of the wrong type.
func describeJSONError(body []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(body, se.Offset)
		msg := se.Error()
		if strings.Contains(msg, "after top-level value") {
			return fmt.Errorf("%w: unexpected data after the JSON object at line %d, column %d", ErrMalformed, line, col)
		}
		if strings.Contains(msg, "unexpected end of JSON input") {
			return fmt.Errorf("%w: the body ends in the middle of the JSON value (line %d, column %d); was it cut off?", ErrMalformed, line, col)
		}
		return fmt.Errorf("%w at line %d, column %d (byte %d): %s", ErrMalformed, line, col, se.Offset, msg)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field == "" {
		return fmt.Errorf("%w: the body is a JSON %s, not an object", ErrNotWebhook, te.Value)
	}
	return fmt.Errorf("%w: %s", ErrNotWebhook, describeTypeError(err))
}

func describeTypeError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := jsonPath(te.Field)
		if field == "" {
			return fmt.Sprintf("expected an object, got a JSON %s", te.Value)
		}
		return fmt.Sprintf("%s: expected %s, got a JSON %s", field, jsonKind(te.Type), te.Value)
	}
	return err.Error()
}

// jsonPath drops the Go names of embedded structs (Alert., Message.) that
// encoding/json puts in Field; the sender only knows the JSON keys, which
// are all lower camel case in this format.
func jsonPath(field string) string {
	parts := strings.Split(field, ".")
	kept := parts[:0]
	for _, p := range parts {
		if p != "" && unicode.IsUpper(rune(p[0])) {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, ".")
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// position converts a byte offset into a 1-based line and column.
func position(body []byte, offset int64) (line, col int) {
	if offset > int64(len(body)) {
		offset = int64(len(body))
	}
	if offset < 0 {
		offset = 0
	}
	before := body[:offset]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	if col < 1 {
		col = 1
	}
	return line, col
}
