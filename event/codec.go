package event

import (
	"bytes"

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

// BatchEncoder encodes events one after another into one buffer it reuses
// across batches: a webhook's events cost one allocation (none once the
// buffer has grown to fit) instead of one each, which was a sixth of the
// bytes medic allocated at full intake. The slices Encode returns stay valid
// until Reset, which makes the buffer's memory available again.
type BatchEncoder struct {
	buf bytes.Buffer
	enc *gojson.Encoder
}

// NewBatchEncoder returns an empty encoder.
func NewBatchEncoder() *BatchEncoder {
	b := &BatchEncoder{}
	b.enc = gojson.NewEncoder(&b.buf)
	return b
}

// Grow makes room for n more bytes, so a batch whose size is known about
// does not grow the buffer event by event.
func (b *BatchEncoder) Grow(n int) { b.buf.Grow(n) }

// Encode appends e, encoded as MarshalEvent would, and returns its bytes.
func (b *BatchEncoder) Encode(e *Event) ([]byte, error) { return b.encode(e) }

// EncodeFinding appends f, encoded as MarshalFinding would, and returns its
// bytes.
func (b *BatchEncoder) EncodeFinding(f *Finding) ([]byte, error) { return b.encode(f) }

func (b *BatchEncoder) encode(v any) ([]byte, error) {
	start := b.buf.Len()
	if err := b.enc.Encode(v); err != nil {
		b.buf.Truncate(start)
		return nil, err
	}
	// Encode ends each value with a newline, which MarshalEvent does not.
	b.buf.Truncate(b.buf.Len() - 1)
	return b.buf.Bytes()[start:b.buf.Len():b.buf.Len()], nil
}

// Reset forgets what was encoded; the slices Encode returned must no
// longer be used.
func (b *BatchEncoder) Reset() { b.buf.Reset() }

// Cap is the buffer's capacity, for a pool to drop encoders that grew on an
// unusually large batch.
func (b *BatchEncoder) Cap() int { return b.buf.Cap() }
