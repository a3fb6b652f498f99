package filetest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks/file"
)

// Read gives back what the real file sink wrote, in order; ReadSoFar leaves
// an unfinished last line for the next read, and Read fails on it.
func TestReadWhatTheSinkWrote(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "findings.jsonl")
	if got := Read(t, path); got != nil {
		t.Fatalf("missing file: %v, want no records", got)
	}
	p := file.Defaults()
	p.Path = path
	s, err := file.Open("file", *p, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	for _, id := range []string{"a1", "b2"} {
		if err := s.Send(context.Background(), event.NewFinding(event.Event{ID: id, Title: "t " + id}, t0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"sink":"file","finding":{"id":"c3","ti`); err != nil { // being written
		t.Fatal(err)
	}
	f.Close()

	recs := ReadSoFar(t, path)
	if len(recs) != 2 || recs[0].Finding.ID != "a1" || recs[1].Finding.ID != "b2" || recs[0].Sink != "file" || recs[1].DeliveredAt.IsZero() {
		t.Fatalf("records %+v, want a1 then b2 from sink file", recs)
	}
	if fs := FindingsSoFar(t, path); len(fs) != 2 || fs[1].Title != "t b2" {
		t.Errorf("findings %+v", fs)
	}
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); Read(r, path) }()
	<-done
	if !r.failed {
		t.Error("Read accepted a torn last line")
	}
}

// fatalRecorder records a Fatalf and ends its goroutine, as t's would.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(string, ...any) {
	r.failed = true
	runtime.Goexit()
}
