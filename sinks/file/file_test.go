package file_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/file"
)

func finding(id string) *event.Finding {
	ev := event.Event{
		ID:       id,
		Kind:     event.KindPodOOMKilled,
		Status:   event.StatusFiring,
		Severity: event.SeverityHigh,
		Title:    "OOMKilled " + id,
		Subject:  event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart"},
		StartsAt: time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC),
	}
	f := event.NewFinding(ev, ev.StartsAt)
	f.Add(event.Enrichment{Title: "Logs", Blocks: []event.Block{event.LogTextBlock("shop/cart", "line one\nline two\n", false)}})
	return f
}

type record struct {
	Sink        string         `json:"sink"`
	DeliveredAt time.Time      `json:"deliveredAt"`
	Finding     *event.Finding `json:"finding"`
}

// readLines returns the file's lines, failing the test on a line that is not
// a well-formed record.
func readLines(t *testing.T, path string) []record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("%s does not end in a newline", path)
	}
	var out []record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r record
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("line %d of %s is not a record: %v\n%s", len(out)+1, path, err, sc.Bytes())
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func ids(recs []record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Finding.ID
	}
	return out
}

func open(t *testing.T, p file.Params) *file.Sink {
	t.Helper()
	s, err := file.Open("archive", p, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func params(path string) file.Params {
	p := *file.Defaults()
	p.Path = path
	return p
}

func send(t *testing.T, s *file.Sink, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := s.Send(context.Background(), finding(id)); err != nil {
			t.Fatalf("Send(%s): %v", id, err)
		}
	}
}

func TestWritesOneRecordPerLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nested", "dir", "findings.jsonl")
	s := open(t, params(path))
	before := time.Now()
	send(t, s, "a", "b")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	recs := readLines(t, path)
	if got := strings.Join(ids(recs), ","); got != "a,b" {
		t.Fatalf("finding IDs in file = %s, want a,b", got)
	}
	want := finding("a")
	got := recs[0]
	if got.Sink != "archive" {
		t.Errorf("sink = %q, want archive", got.Sink)
	}
	if got.DeliveredAt.Before(before.Add(-time.Second)) || got.DeliveredAt.Location() != time.UTC {
		t.Errorf("deliveredAt = %v, want a UTC time from this test run", got.DeliveredAt)
	}
	if got.Finding.Title != want.Title || got.Finding.Event.Subject != want.Event.Subject ||
		len(got.Finding.Enrichments) != 1 || got.Finding.Enrichments[0].Blocks[0].Log.Text != "line one\nline two\n" {
		t.Errorf("finding did not round-trip: %+v", got.Finding)
	}

	for _, p := range []struct {
		path string
		want os.FileMode
	}{{path, 0o640}, {filepath.Dir(path), 0o750}} {
		st, err := os.Stat(p.path)
		if err != nil {
			t.Fatal(err)
		}
		// The umask may only take permissions away.
		if extra := st.Mode().Perm() &^ p.want; extra != 0 {
			t.Errorf("%s has mode %v, want at most %v", p.path, st.Mode().Perm(), p.want)
		}
	}

	if err := s.Send(context.Background(), finding("c")); err == nil {
		t.Error("Send after Close returned no error")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestExactlyOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// existing is written to the file before the sink opens it.
		existing string
		sends    []string
		want     []string
		// wantPrefix is what the file must still start with.
		wantPrefix string
		// wantLines, when set, is how many lines the file must have: a cut
		// torn line leaves none behind.
		wantLines int
	}{
		{
			name:  "a second Send of the same finding writes nothing",
			sends: []string{"a", "a", "b", "a", "b"},
			want:  []string{"a", "b"},
		},
		{
			name:     "a restarted sink skips findings already in the file",
			existing: line("a") + line("b"),
			sends:    []string{"b", "a", "c", "c"},
			want:     []string{"a", "b", "c"},
		},
		{
			name:       "a torn last line is cut off at open and its finding written whole",
			existing:   line("a") + `{"sink":"archive","deliveredAt":"2025-03-14T09:00:00Z","finding":{"id":"b","ti`,
			sends:      []string{"a", "b", "b"},
			want:       []string{"a", "b"},
			wantPrefix: line("a") + `{"sink":"archive","deliveredAt":"`,
			wantLines:  2,
		},
		{
			name:      "a last line that ends in a newline but is not JSON is cut off too",
			existing:  line("a") + `{"sink":"archive","finding":{"id":"b"` + "\n",
			sends:     []string{"a", "b"},
			want:      []string{"a", "b"},
			wantLines: 2,
		},
		{
			name:      "a record cut just before its newline is torn",
			existing:  line("a") + strings.TrimSuffix(line("b"), "\n"),
			sends:     []string{"b"},
			want:      []string{"a", "b"},
			wantLines: 2,
		},
		{
			name:     "a torn line in the middle is not taken for a delivery",
			existing: line("a") + `{"sink":"archive","finding":{"id":"b"` + "\n" + line("c"),
			sends:    []string{"a", "b", "c"},
			want:     []string{"a", "c", "b"},
		},
		{
			name:     "lines that are not records are ignored",
			existing: "\n" + "not json\n" + `{"other":"thing"}` + "\n" + line("a"),
			sends:    []string{"a", "b"},
			want:     []string{"a", "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "findings.jsonl")
			if tt.existing != "" {
				if err := os.WriteFile(path, []byte(tt.existing), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			s := open(t, params(path))
			send(t, s, tt.sends...)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(data), tt.wantPrefix) {
				t.Errorf("file does not start with %q:\n%s", tt.wantPrefix, data)
			}
			var got []string
			for l := range strings.Lines(string(data)) {
				var r record
				if json.Unmarshal([]byte(l), &r) == nil && r.Finding != nil {
					got = append(got, r.Finding.ID)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("records = %v, want %v\n%s", got, tt.want, data)
			}
			if n := strings.Count(string(data), "\n"); tt.wantLines > 0 && n != tt.wantLines {
				t.Errorf("file has %d lines, want %d:\n%s", n, tt.wantLines, data)
			}
		})
	}
}

// line returns a record for id as the sink writes it.
func line(id string) string {
	b, err := json.Marshal(record{Sink: "archive", DeliveredAt: time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC), Finding: finding(id)})
	if err != nil {
		panic(err)
	}
	return string(b) + "\n"
}

// Restarting with the same sink, as medic does after a crash, must not write
// a finding that the previous process wrote.
func TestRestartKeepsExactlyOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "findings.jsonl")
	first := open(t, params(path))
	send(t, first, "a", "b", "c")
	// Simulate a crash: the process dies without Close.

	second := open(t, params(path))
	send(t, second, "c", "b", "d")
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ids(readLines(t, path)), ","); got != "a,b,c,d" {
		t.Errorf("records = %s, want a,b,c,d", got)
	}
}

// The whole file is read back on open, however large: a finding written
// long before the crash (here the first of thousands, megabytes back) is not
// written again when it is redelivered.
func TestRestartReadsTheWholeFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		lines   int
		padding int // description bytes per record
	}{
		// ~2.5 KiB records: ~7.5 MiB, past the 4 MiB an older medic read.
		{"large records", 3000, 2000},
		// ~530-byte records, more lines than an older medic's 4,096.
		{"many lines", 10000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "findings.jsonl")
			var b bytes.Buffer
			for i := range tt.lines {
				f := finding(fmt.Sprintf("f%05d", i))
				f.Description = strings.Repeat("x", tt.padding)
				rec, err := json.Marshal(record{Sink: "archive", Finding: f})
				if err != nil {
					t.Fatal(err)
				}
				b.Write(rec)
				b.WriteByte('\n')
			}
			// And a torn last line.
			b.WriteString(`{"sink":"archive","finding":{"id":"torn","ti`)
			if err := os.WriteFile(path, b.Bytes(), 0o640); err != nil {
				t.Fatal(err)
			}
			t.Logf("file of %d records, %.1f MiB", tt.lines, float64(b.Len())/(1<<20))

			s := open(t, params(path))
			// Every finding redelivered, the oldest first, then one new one
			// and the one on the torn line.
			for i := range tt.lines {
				send(t, s, fmt.Sprintf("f%05d", i))
			}
			send(t, s, "new", "torn")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			recs := readLines(t, path) // fails on a torn or invalid line
			if got := strings.Join(ids(recs[tt.lines:]), ","); got != "new,torn" || len(recs) != tt.lines+2 {
				t.Errorf("%d records, appended %q; want %d, \"new,torn\"", len(recs), got, tt.lines+2)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "findings.jsonl")
	p := params(path)
	p.MaxSizeMB = 1
	p.MaxFiles = 2
	// Each record is padded to about 100 KiB, so ten fill a file.
	big := func(id string) *event.Finding {
		f := finding(id)
		f.Description = strings.Repeat("x", 100<<10)
		return f
	}
	s := open(t, p)
	var all []string
	for i := range 35 {
		id := fmt.Sprintf("f%02d", i)
		all = append(all, id)
		if err := s.Send(context.Background(), big(id)); err != nil {
			t.Fatalf("Send(%s): %v", id, err)
		}
	}
	// A rotated finding is still remembered.
	if err := s.Send(context.Background(), big("f00")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var kept []string
	for _, name := range []string{path + ".2", path + ".1", path} {
		recs := readLines(t, name)
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 1<<20 {
			t.Errorf("%s is %d bytes, over max_size_mb", name, st.Size())
		}
		if len(recs) == 0 {
			t.Errorf("%s is empty", name)
		}
		kept = append(kept, ids(recs)...)
	}
	if _, err := os.Stat(path + ".3"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.3 exists, want at most max_files=2 rotated files (err %v)", path, err)
	}
	// The kept files hold the newest findings, in order, with nothing lost
	// between them.
	if want := strings.Join(all[len(all)-len(kept):], ","); strings.Join(kept, ",") != want {
		t.Errorf("kept records = %v, want the newest %d of %v", kept, len(kept), all)
	}

	// A restart right after a rotation still knows the findings in <path>.1.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	again := open(t, p)
	last := kept[len(kept)-1]
	if err := again.Send(context.Background(), big(last)); err != nil {
		t.Fatal(err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 0 {
		t.Errorf("after a restart, resending %s wrote %d bytes to %s", last, st.Size(), path)
	}
}

func TestConcurrentSends(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "findings.jsonl")
	p := params(path)
	p.Fsync = true
	s := open(t, p)
	const goroutines, perG = 8, 25
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				// Every finding is sent by two goroutines, as a redelivery
				// racing the original would be.
				id := fmt.Sprintf("f%03d", (g/2)*perG+i)
				if err := s.Send(context.Background(), finding(id)); err != nil {
					t.Errorf("Send(%s): %v", id, err)
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	recs := readLines(t, path)
	const want = goroutines / 2 * perG
	if len(recs) != want {
		t.Fatalf("got %d lines, want %d", len(recs), want)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.Finding.ID] {
			t.Errorf("finding %s written twice", r.Finding.ID)
		}
		seen[r.Finding.ID] = true
	}
}

func TestCanceledContextWritesNothing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "findings.jsonl")
	s := open(t, params(path))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Send(ctx, finding("a")); !errors.Is(err, context.Canceled) {
		t.Errorf("Send = %v, want context.Canceled", err)
	}
	// The finding was not delivered, so a later Send writes it.
	send(t, s, "a")
	if got := len(readLines(t, path)); got != 1 {
		t.Errorf("got %d lines, want 1", got)
	}
}

func TestParams(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{"defaults apply", "path: " + filepath.Join(dir, "ok.jsonl"), ""},
		{"all keys", "path: " + filepath.Join(dir, "all.jsonl") + "\n  fsync: true\n  max_size_mb: 10\n  max_files: 3", ""},
		{"typo", "pth: x.jsonl", `line 3: unknown parameter "pth" (did you mean "path"?)`},
		{"wrong type", "fsync: sometimes", "line 3: cannot use"},
		{"negative size", "max_size_mb: -1", "max_size_mb must be 0 (unlimited) or more"},
		{"no files kept", "max_files: 0", "max_files must be at least 1"},
		{"empty path", `path: ""`, "path must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var specs []sinks.Spec
			doc := "- name: archive\n  type: file\n  " + tt.yaml + "\n"
			if err := yaml.Unmarshal([]byte(doc), &specs); err != nil {
				t.Fatal(err)
			}
			set, err := sinks.NewRegistry(file.Register).Start(t.Context(), specs, sinks.Deps{})
			if err == nil {
				defer set.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestOpenFailsOnUnwritablePath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := file.Open("archive", params(filepath.Join(blocker, "findings.jsonl")), nil)
	if err == nil || !strings.Contains(err.Error(), "findings file") {
		t.Errorf("Open under a regular file = %v, want an error naming the findings file", err)
	}
}
