package file_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/medichq/medic/sinks"
)

// TestSendEncodedWritesTheSameRecordAsSend: the hot path (JSON from the bus
// spliced into the line) and the plain path must produce lines a reader
// cannot tell apart, and share the duplicate check.
func TestSendEncodedWritesTheSameRecordAsSend(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plain := open(t, params(filepath.Join(dir, "plain.jsonl")))
	spliced := open(t, params(filepath.Join(dir, "spliced.jsonl")))
	var _ sinks.EncodedSender = spliced

	f := finding("f-1")
	encoded, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.Send(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second is a redelivery and must write nothing
		if err := spliced.SendEncoded(context.Background(), f.ID, encoded); err != nil {
			t.Fatal(err)
		}
	}
	if err := spliced.Send(context.Background(), f); err != nil {
		t.Fatal(err)
	}

	a, b := readAll(t, filepath.Join(dir, "plain.jsonl")), readAll(t, filepath.Join(dir, "spliced.jsonl"))
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("lines: plain %d, spliced %d; want 1 each", len(a), len(b))
	}
	var ra, rb map[string]any
	if err := json.Unmarshal(a[0], &ra); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b[0], &rb); err != nil {
		t.Fatalf("spliced line is not JSON: %v\n%s", err, b[0])
	}
	delete(ra, "deliveredAt")
	delete(rb, "deliveredAt")
	ja, _ := json.Marshal(ra)
	jb, _ := json.Marshal(rb)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("records differ:\nSend        %s\nSendEncoded %s", ja, jb)
	}
	if recs := readLines(t, filepath.Join(dir, "spliced.jsonl")); recs[0].Finding.ID != "f-1" || recs[0].Sink != "archive" || recs[0].DeliveredAt.IsZero() {
		t.Fatalf("spliced record %+v", recs[0])
	}
}

func readAll(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		if len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}
