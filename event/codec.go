package event

import (
	gojson "github.com/goccy/go-json"
)

// Events and findings cross the bus as JSON: every alert is encoded once on
// the way in and decoded by the engine, every finding encoded once and read
// by each sink. With encoding/json that reflection was a fifth of medic's
// CPU at full webhook intake (its map encoder alone allocates for each key
// it sorts). goccy/go-json writes the same bytes (codec_test.go holds it to
// that, HTML escaping, omitzero and invalid UTF-8 included) at a third of
// the cost, so the hot path goes through these four functions and the rest
// of medic keeps encoding/json.

// MarshalEvent encodes e as encoding/json would.
func MarshalEvent(e *Event) ([]byte, error) { return gojson.Marshal(e) }

// UnmarshalEvent decodes an event encoded by MarshalEvent (or encoding/json).
// The event's strings may share data's memory, which must not be modified
// while the event is in use (the engine decodes each delivered message
// once, and copying every label was most of the decoder's allocations).
func UnmarshalEvent(data []byte, e *Event) error {
	return gojson.UnmarshalWithOption(data, e, gojson.DecodeNoCopyString())
}

// MarshalFinding encodes f as encoding/json would.
func MarshalFinding(f *Finding) ([]byte, error) { return gojson.Marshal(f) }

// UnmarshalFinding decodes a finding encoded by MarshalFinding (or
// encoding/json).
func UnmarshalFinding(data []byte, f *Finding) error { return gojson.Unmarshal(data, f) }
