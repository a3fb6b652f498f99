package alertmanager

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/medichq/medic/event"
)

// FuzzDecode checks that no body makes the decoder panic, that every refusal
// is one of the two documented kinds (so the handler answers 400, not 500),
// and that whatever is accepted converts to one event per alert, each with
// an ID.
func FuzzDecode(f *testing.F) {
	if files, err := filepath.Glob(filepath.Join(payloadDir, "*.json")); err == nil {
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `"4"`, `{"version":"4"}`, `{"version":"4","alerts":[]}`,
		`{"version":"4","alerts":[` + okAlert + `]}`,
		`{"version":"4","status":"resolved","alerts":[{"labels":{"a":"b"}}]}`,
		`{"version":"4","alerts":[{"status":"firing","labels":{"":""},"startsAt":null,"endsAt":"9999-12-31T23:59:59.999999999+23:59"}]}`,
		`{"version":"4","alerts":[{"status":"firing","labels":{"a":"\u0000\ud800"},"fingerprint":""}]} `,
		`{"version":"4","alerts":[` + okAlert + `]}{}`,
		`{"Version":"4","ALERTS":[` + okAlert + `]}`,
		`{"version":"4","\u0061lerts":[` + okAlert + `,` + okAlert + `]}`,
		`{"version":"4","alerts":[{"status":"firing","labels":{"a":"\\\"]["}},` + okAlert + `]}`,
	} {
		f.Add([]byte(s))
	}
	received := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		// The fast path may only accept what the explaining decoder accepts,
		// and must decode it to the same message.
		if fast, ok := decodeValid(body); ok {
			slow, err := decodeExplained(body)
			if err != nil {
				t.Fatalf("fast path accepted a body the explaining decoder refuses: %v", err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("decoders disagree:\nfast %+v\nslow %+v", fast.Data, slow.Data)
			}
		}
		msg, err := Decode(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotWebhook) {
				t.Fatalf("error of no documented kind: %v", err)
			}
			if msg != nil {
				t.Fatal("a message and an error")
			}
			return
		}
		// The caps count without decoding; they must not undercount what
		// the decoder makes (they may count other top-level arrays too).
		if scan := scanBody(body, 0); scan.Alerts < len(msg.Alerts) {
			t.Fatalf("the scan counts %d alerts, the decoder %d", scan.Alerts, len(msg.Alerts))
		}
		events := ToEvents(msg, DefaultSource, received)
		if len(events) != len(msg.Alerts) {
			t.Fatalf("%d events for %d alerts", len(events), len(msg.Alerts))
		}
		for i, ev := range events {
			// checkPayload skips encoding events that these bounds say fit.
			if data, err := event.MarshalEvent(&ev); err == nil {
				if int64(len(data)) > eventSizeBound(&ev) {
					t.Fatalf("event %d encodes to %d bytes, over its bound %d", i, len(data), eventSizeBound(&ev))
				}
				if len(data) > 18*len(body)+64<<10 {
					t.Fatalf("event %d encodes to %d bytes, over 18 times the body and 64 KiB", i, len(data))
				}
			}
			if ev.ID == "" {
				t.Fatalf("event %d has no ID", i)
			}
			if ev.Status != "firing" && ev.Status != "resolved" {
				t.Fatalf("event %d has status %q", i, ev.Status)
			}
			if ev.Fingerprint == "" {
				t.Fatalf("event %d has no fingerprint", i)
			}
		}
	})
}
