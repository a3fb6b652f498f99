// Package filetest reads what the file sink wrote, for the tests that run
// medic (in process, as a binary or in a pod) with a file sink and count
// the findings it delivered.
package filetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/medichq/medic/event"
)

// Record is one line of the file sink's file.
type Record struct {
	Sink        string        `json:"sink"`
	DeliveredAt time.Time     `json:"deliveredAt"`
	Finding     event.Finding `json:"finding"`
}

// Read returns the records of the file at path; a missing file has none
// (medic has written nothing yet). Every line must be a whole record, since
// the sink writes whole lines only: a torn one fails t. Read it once medic
// has stopped; while it writes, use ReadSoFar.
func Read(t testing.TB, path string) []Record {
	t.Helper()
	return read(t, path, false)
}

// ReadSoFar is Read for a file medic may be writing to: a last line without
// its newline is a write in progress, left for the next read.
func ReadSoFar(t testing.TB, path string) []Record {
	t.Helper()
	return read(t, path, true)
}

func read(t testing.TB, path string, inProgress bool) []Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("read the file sink's file: %v", err)
	}
	if i := bytes.LastIndexByte(b, '\n'); inProgress && i < len(b)-1 {
		b = b[:i+1]
	}
	var out []Record
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil || r.Finding.ID == "" {
			t.Fatalf("the file sink's file %s has a line that is no finding record (%v): %.200q", path, err, line)
		}
		out = append(out, r)
	}
	return out
}

// FindingsSoFar is the findings of ReadSoFar's records, in the file's order.
func FindingsSoFar(t testing.TB, path string) []event.Finding {
	t.Helper()
	recs := ReadSoFar(t, path)
	out := make([]event.Finding, len(recs))
	for i, r := range recs {
		out[i] = r.Finding
	}
	return out
}
