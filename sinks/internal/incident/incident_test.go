package incident_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks/internal/incident"
	"github.com/medichq/medic/sinks/vendortest"
)

// Text cuts a finding too long for a vendor's field on a line boundary with
// a note, within the limit, and keeps what was redacted after the note.
func TestText(t *testing.T) {
	t.Parallel()
	huge := vendortest.Findings()["huge"] // ends with what was redacted
	plain := vendortest.Alert(event.StatusFiring)
	const redacted = "🔒 2 values redacted (1 bearer token, 1 env value) before this finding left medic."
	for _, tt := range []struct {
		name         string
		f            *event.Finding
		max          int
		wantCut      bool
		wantRedacted bool
	}{
		{"fits", plain, 0, false, false},
		{"huge, no limit", huge, 0, false, true},
		{"huge, PagerDuty's room", huge, 8000, true, true},
		{"huge, a small field", huge, 600, true, true},
		{"cut without a redaction", plain, 300, true, false},
		{"smaller than the note", huge, 20, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := incident.Text(tt.f, tt.max)
			if tt.max > 0 && len(out) > tt.max {
				t.Fatalf("%d bytes, limit %d", len(out), tt.max)
			}
			if !utf8.ValidString(out) {
				t.Fatal("the cut split a character")
			}
			if got := strings.Contains(out, "…truncated; the whole finding is on medic's finding page"); got != tt.wantCut {
				t.Errorf("cut = %v, want %v:\n%s", got, tt.wantCut, out)
			}
			if got := strings.HasSuffix(out, redacted); got != tt.wantRedacted {
				t.Errorf("ends with the redaction note = %v, want %v:\n%s", got, tt.wantRedacted, out[max(0, len(out)-300):])
			}
			if strings.Count(out, "values redacted") > 1 {
				t.Errorf("the redaction note is there twice")
			}
		})
	}
}
