package stdout_test

import (
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
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/stdout"
)

// fullFinding has one block of every kind, so one golden file shows how each
// renders.
func fullFinding(status event.Status) *event.Finding {
	starts := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	ev := event.Event{
		ID:          "4f1c2a9e0b7d3c5a8e6f1d2c3b4a5968",
		Kind:        event.KindPodCrashLoop,
		Source:      "kubernetes",
		Status:      status,
		Severity:    event.SeverityCritical,
		Title:       "Pod shop/cart-7d9 is crash looping",
		Description: "Container app restarted 5 times in 10 minutes.",
		Labels:      map[string]string{"team": "payments", "namespace": "shop"},
		Subject:     event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart-7d9", Container: "app", Node: "node-a1"},
		StartsAt:    starts,
	}
	if status == event.StatusResolved {
		ev.ID = "9a8b7c6d5e4f30211203f4e5d6c7b8a9"
		ev.EndsAt = starts.Add(12 * time.Minute)
	}
	f := event.NewFinding(ev, starts.Add(2*time.Second))
	f.Playbooks = []string{"crashloop-logs", "notify-oncall"}
	f.Add(event.Enrichment{
		Title:  "Why it restarts",
		Source: "create_finding",
		Blocks: []event.Block{event.MarkdownBlock("The container exits with **code 2** right after start.\n\nCheck the `CART_DB_URL` setting.")},
	})
	f.Add(event.Enrichment{
		Title:  "Pod",
		Source: "pod_info",
		Blocks: []event.Block{event.KeyValueBlock([][2]string{
			{"phase", "Running"},
			{"restarts", "5"},
			{"last termination", "Error (exit code 2)"},
		})},
	})
	f.Add(event.Enrichment{
		Title:  "Containers",
		Source: "pod_info",
		Blocks: []event.Block{{Kind: event.BlockTable, Table: &event.TableBlock{
			Headers: []string{"name", "image", "ready", "restarts"},
			Rows: [][]string{
				{"app", "registry.example/cart:1.42.0", "false", "5"},
				{"envoy-sidecar", "envoyproxy/envoy:v1.31", "true", "0"},
				{"log-shipper", "fluent-bit:3", "true"}, // ragged: a cell is missing
			},
		}}},
	})
	f.Add(event.Enrichment{
		Title:  "Logs",
		Source: "pod_logs",
		Blocks: []event.Block{event.LogTextBlock("shop/cart-7d9 container app (previous)",
			"2025-03-14T09:26:50Z starting cart service\r\n2025-03-14T09:26:51Z config: CART_DB_URL is not set\npanic: missing configuration\n", true)},
	})
	f.Add(event.Enrichment{
		Title: "Links",
		Blocks: []event.Block{event.LinksBlock(
			event.Link{Label: "Grafana", URL: "https://grafana.example/d/pods?var-pod=cart-7d9"},
			event.Link{Label: "Silence", URL: "https://alertmanager.example/#/silences/new"},
		)},
	})
	f.Add(event.Enrichment{
		Title:  "Memory",
		Source: "graph",
		Blocks: []event.Block{{Kind: event.BlockImage, Image: &event.ImageBlock{Name: "memory.png", PNG: make([]byte, 2048)}}},
	})
	return f
}

// minimalFinding has no subject, playbooks, description or enrichments.
func minimalFinding() *event.Finding {
	return &event.Finding{ID: "m1", Title: "Watchdog", Severity: event.SeverityNone, Event: event.Event{Status: event.StatusFiring}}
}

// oddFinding holds what sinks must survive: escape codes from a hostile log,
// blocks without payload, a block kind from the future, an empty table.
func oddFinding() *event.Finding {
	return &event.Finding{
		ID:       "odd",
		Title:    "Title with \x1b]0;pwned\x07 escape",
		Severity: event.SeverityWarning,
		Event:    event.Event{Status: event.StatusFiring, Subject: event.Subject{Kind: "Node", Name: "node-b2"}},
		Enrichments: []event.Enrichment{
			{Source: "untitled_action", Blocks: []event.Block{
				event.LogTextBlock("", "\x1b[31mred\x1b[0m text\ttab\n", false),
				event.LogTextBlock("empty log", "", false),
				{Kind: event.BlockTable},
				{Kind: event.BlockTable, Table: &event.TableBlock{Headers: []string{"only", "headers"}}},
				{Kind: event.BlockTable, Table: &event.TableBlock{Rows: [][]string{{"multi\nline", "cell"}, {"ключ", "значение"}}}},
				{Kind: event.BlockLinks},
				event.LinksBlock(event.Link{URL: "https://example.com/no-label"}),
				{Kind: "video"},
			}},
		},
	}
}

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		golden  string
		finding *event.Finding
		color   bool
	}{
		{"firing", fullFinding(event.StatusFiring), false},
		{"resolved", fullFinding(event.StatusResolved), false},
		{"firing_color", fullFinding(event.StatusFiring), true},
		{"minimal", minimalFinding(), false},
		{"odd", oddFinding(), false},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := stdout.Render(&buf, tt.finding, tt.color); err != nil {
				t.Fatalf("Render: %v", err)
			}
			got := buf.Bytes()
			path := filepath.Join("testdata", tt.golden+".golden")
			testkit.Golden(t, path, got)
			hasEscape := bytes.Contains(got, []byte("\x1b"))
			if hasEscape != tt.color {
				t.Errorf("output contains escape codes = %v, want %v", hasEscape, tt.color)
			}
		})
	}
}

// Rendering the same finding twice gives the same bytes: nothing depends on
// map order or the clock.
func TestRenderDeterministic(t *testing.T) {
	t.Parallel()
	f := fullFinding(event.StatusFiring)
	var first bytes.Buffer
	if err := stdout.Render(&first, f, true); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		var again bytes.Buffer
		if err := stdout.Render(&again, f, true); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first.Bytes(), again.Bytes()) {
			t.Fatal("two renderings of the same finding differ")
		}
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	if err := stdout.Render(&bytes.Buffer{}, nil, false); err == nil {
		t.Error("Render(nil finding) returned no error")
	}
	werr := errors.New("disk on fire")
	err := stdout.Render(failingWriter{werr}, minimalFinding(), false)
	if !errors.Is(err, werr) {
		t.Errorf("Render to failing writer: got %v, want it to wrap %v", err, werr)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// countingWriter records each Write separately, to check one Write per
// finding.
type countingWriter struct {
	mu     sync.Mutex
	writes [][]byte
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func TestSinkFormats(t *testing.T) {
	t.Parallel()
	f := fullFinding(event.StatusFiring)
	var text bytes.Buffer
	if err := stdout.Render(&text, f, false); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		params string
		check  func(t *testing.T, out []byte)
	}{
		{"default is uncolored text off a terminal", "", func(t *testing.T, out []byte) {
			if !bytes.Equal(out, text.Bytes()) {
				t.Errorf("got\n%s\nwant\n%s", out, text.Bytes())
			}
		}},
		{"color never", "color: never", func(t *testing.T, out []byte) {
			if !bytes.Equal(out, text.Bytes()) {
				t.Errorf("got\n%s\nwant\n%s", out, text.Bytes())
			}
		}},
		{"color always", "color: always", func(t *testing.T, out []byte) {
			if !bytes.Contains(out, []byte("\x1b[")) {
				t.Errorf("color: always printed no escape codes:\n%q", out)
			}
		}},
		{"json", "format: json", func(t *testing.T, out []byte) {
			if bytes.Count(out, []byte("\n")) != 1 || !bytes.HasSuffix(out, []byte("\n")) {
				t.Fatalf("want exactly one line, got %q", out)
			}
			var got event.Finding
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("output is not a JSON finding: %v", err)
			}
			if got.ID != f.ID || got.Title != f.Title || len(got.Enrichments) != len(f.Enrichments) {
				t.Errorf("decoded finding = %s %q with %d enrichments, want %s %q with %d",
					got.ID, got.Title, len(got.Enrichments), f.ID, f.Title, len(f.Enrichments))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := &countingWriter{}
			sink := startSink(t, tt.params, w)
			if err := sink.Send(context.Background(), f); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if len(w.writes) != 1 {
				t.Fatalf("Send made %d writes, want 1", len(w.writes))
			}
			tt.check(t, w.writes[0])
		})
	}
}

// startSink starts a stdout sink the way medic does, from YAML parameters.
func startSink(t *testing.T, params string, w *countingWriter) sinks.Sink {
	t.Helper()
	var specs []sinks.Spec
	if err := yaml.Unmarshal(fmt.Appendf(nil, "- name: console\n  type: stdout\n  %s\n", params), &specs); err != nil {
		t.Fatalf("decode spec: %v", err)
	}
	set, err := sinks.NewRegistry(stdout.Register).Start(t.Context(), specs, sinks.Deps{Out: w})
	if err != nil {
		t.Fatalf("start sink: %v", err)
	}
	t.Cleanup(func() { set.Close() })
	c, ok := set.Get("console")
	if !ok {
		t.Fatal("sink console not started")
	}
	return c.Sink
}

func TestParamsValidation(t *testing.T) {
	t.Parallel()
	// A bad value is reported at the sink (line 1); an unknown key at the
	// key itself (line 3).
	tests := []struct {
		params  string
		wantErr string
	}{
		{"format: text", ""},
		{"format: json", ""},
		{"color: auto", ""},
		{"format: yaml", `line 1: format must be "text" or "json", got "yaml"`},
		{"color: sometimes", `line 1: color must be "auto", "always" or "never", got "sometimes"`},
		{"colour: always", `line 3: unknown parameter "colour" (did you mean "color"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.params, func(t *testing.T) {
			t.Parallel()
			var specs []sinks.Spec
			if err := yaml.Unmarshal([]byte("- name: console\n  type: stdout\n  "+tt.params+"\n"), &specs); err != nil {
				t.Fatal(err)
			}
			err := specs[0].Validate(sinks.NewRegistry(stdout.Register))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestSinkConcurrentSendsDoNotInterleave(t *testing.T) {
	t.Parallel()
	w := &countingWriter{}
	sink, err := stdout.NewWriter(stdout.Params{Format: stdout.FormatText, Color: stdout.ColorNever}, w)
	if err != nil {
		t.Fatal(err)
	}
	const n = 32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			f := fullFinding(event.StatusFiring)
			f.ID = fmt.Sprintf("f-%02d", i)
			if err := sink.Send(context.Background(), f); err != nil {
				t.Errorf("Send: %v", err)
			}
		})
	}
	wg.Wait()
	if len(w.writes) != n {
		t.Fatalf("got %d writes, want %d", len(w.writes), n)
	}
	for _, wr := range w.writes {
		if c := bytes.Count(wr, []byte("FIRING [critical]")); c != 1 {
			t.Errorf("a write holds %d findings, want 1", c)
		}
	}
}

func TestSinkRespectsCanceledContext(t *testing.T) {
	t.Parallel()
	w := &countingWriter{}
	sink, err := stdout.NewWriter(*stdout.Defaults(), w)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sink.Send(ctx, minimalFinding()); !errors.Is(err, context.Canceled) {
		t.Errorf("Send with canceled context = %v, want context.Canceled", err)
	}
	if len(w.writes) != 0 {
		t.Errorf("canceled Send wrote %d times", len(w.writes))
	}
}

// color: auto must stay off for a regular file: only a terminal gets color.
func TestColorAutoRegularFile(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sink, err := stdout.NewWriter(*stdout.Defaults(), f)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Send(context.Background(), fullFinding(event.StatusFiring)); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("\x1b")) {
		t.Error("color: auto wrote escape codes to a regular file")
	}
}
