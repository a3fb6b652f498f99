package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// trimFinding is a finding with the given evidence around an ordinary
// alert's event.
func trimFinding(desc string, blocks ...Block) *Finding {
	ev := Event{
		ID: "0123456789abcdef0123456789abcdef", Kind: KindPrometheusAlert, Source: "alertmanager",
		Status: StatusFiring, Severity: SeverityWarning, Title: "Pod is crash looping.", Description: desc,
		Labels:      map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-7d9"},
		Annotations: map[string]string{"summary": "Pod is crash looping.", "description": desc},
		Subject:     Subject{Kind: "Pod", Namespace: "shop", Name: "cart-7d9"},
		StartsAt:    time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
	}
	f := NewFinding(ev, ev.StartsAt)
	if len(blocks) > 0 {
		f.Add(Enrichment{Title: "Evidence", Source: "test", Blocks: blocks})
	}
	return f
}

// logLines is n numbered log lines, so a test can tell which were kept.
func logLines(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "line %06d: connection refused to postgres at 10.0.0.7:5432\n", i)
	}
	return b.String()
}

func encodedSize(t *testing.T, f *Finding) int {
	t.Helper()
	data, err := MarshalFinding(f)
	if err != nil {
		t.Fatal(err)
	}
	return len(data)
}

func TestTrimToFit(t *testing.T) {
	t.Parallel()
	const maxPayload = 64 << 10
	const limit = maxPayload - 1024
	bigLog := logLines(5000) // 300 KB
	table := &TableBlock{Headers: []string{"k", "v"}}
	for i := range 5000 {
		table.Rows = append(table.Rows, []string{fmt.Sprint("key", i), "value"})
	}
	cases := []struct {
		name    string
		f       *Finding
		trimmed bool
		check   func(t *testing.T, f *Finding)
	}{
		{
			name: "fits: untouched",
			f:    trimFinding("short", LogTextBlock("shop/cart-7d9 app", logLines(10), false)),
		},
		{
			name: "fits, though not by its bound: untouched",
			f:    trimFinding("short", LogTextBlock("shop/cart-7d9 app", logLines(300), false)),
		},
		{
			name:    "log tail: head and tail kept, truncated, marked",
			f:       trimFinding("short", LogTextBlock("shop/cart-7d9 app", bigLog, false)),
			trimmed: true,
			check: func(t *testing.T, f *Finding) {
				log := f.Enrichments[0].Blocks[0].Log
				if !log.Truncated {
					t.Error("the log is not marked truncated")
				}
				if !strings.HasPrefix(log.Text, "line 000000") || !strings.HasSuffix(log.Text, "line 004999: connection refused to postgres at 10.0.0.7:5432\n") {
					t.Errorf("the head or the tail is gone:\n%.200s\n…\n%s", log.Text, log.Text[len(log.Text)-200:])
				}
				if !strings.Contains(log.Text, "bytes to fit the bus's max payload (65536 bytes)…") {
					t.Error("no marker in the log")
				}
			},
		},
		{
			name:    "giant description: every copy trimmed",
			f:       trimFinding(strings.Repeat("the disk is full; ", 20000)),
			trimmed: true,
			check: func(t *testing.T, f *Finding) {
				for name, s := range map[string]string{"finding": f.Description, "event": f.Event.Description, "annotation": f.Event.Annotations["description"]} {
					if !strings.Contains(s, "…trimmed ") {
						t.Errorf("the %s description has no marker", name)
					}
				}
			},
		},
		{
			name:    "big table: replaced by a marker",
			f:       trimFinding("short", Block{Kind: BlockTable, Table: table}),
			trimmed: true,
			check: func(t *testing.T, f *Finding) {
				b := f.Enrichments[0].Blocks[0]
				if b.Kind != BlockMarkdown || !strings.HasPrefix(b.Markdown, "…a table of ") {
					t.Errorf("the table is not replaced by a marker: %+v", b)
				}
			},
		},
		{
			name:    "image: replaced, the log beside it kept",
			f:       trimFinding("short", Block{Kind: BlockImage, Image: &ImageBlock{Name: "g.png", PNG: make([]byte, 100<<10)}}, LogTextBlock("x", logLines(20), false)),
			trimmed: true,
			check: func(t *testing.T, f *Finding) {
				if b := f.Enrichments[0].Blocks[0]; b.Kind != BlockMarkdown || !strings.Contains(b.Markdown, "an image of") {
					t.Errorf("the image is not replaced: %+v", b.Kind)
				}
				if f.Enrichments[0].Blocks[1].Log.Truncated {
					t.Error("the small log was trimmed too")
				}
			},
		},
		{
			name:    "multi-byte text: still valid UTF-8",
			f:       trimFinding("short", MarkdownBlock(strings.Repeat("日本語のログ", 20000))),
			trimmed: true,
			check: func(t *testing.T, f *Finding) {
				if md := f.Enrichments[0].Blocks[0].Markdown; !utf8.ValidString(md) {
					t.Error("the markdown was cut inside a rune")
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := encodedSize(t, tc.f)
			n, err := tc.f.TrimToFit(limit, maxPayload)
			if err != nil {
				t.Fatal(err)
			}
			after := encodedSize(t, tc.f)
			if after > limit {
				t.Fatalf("%d bytes after trimming, limit %d", after, limit)
			}
			if !tc.trimmed {
				if n != 0 || after != before {
					t.Fatalf("a finding that fit was trimmed: %d bytes, %d → %d", n, before, after)
				}
				return
			}
			if n < before-limit {
				t.Errorf("reports %d bytes trimmed; the finding shrank by %d", n, before-after)
			}
			last := tc.f.Enrichments[len(tc.f.Enrichments)-1]
			if last.Source != TrimmedSource || !strings.Contains(last.Blocks[0].Markdown, fmt.Sprintf("%d bytes of evidence were trimmed", n)) {
				t.Errorf("no note of the trimming at the end: %+v", last)
			}
			if tc.check != nil {
				tc.check(t, tc.f)
			}
		})
	}
}

// TestSizeBound: sizeBound, which lets TrimToFit skip encoding, is never
// below what MarshalFinding makes, for the findings that stress the codec.
func TestSizeBound(t *testing.T) {
	t.Parallel()
	for i, f := range append(codecCases(), *trimFinding(strings.Repeat("<é\u2028\xff", 1000), LogTextBlock("s", logLines(50), true))) {
		if size := encodedSize(t, &f); size > f.sizeBound() {
			t.Errorf("finding %d: %d bytes encoded, bound %d", i, size, f.sizeBound())
		}
	}
}

func TestTrimToFitCannotFit(t *testing.T) {
	t.Parallel()
	f := trimFinding("short", LogTextBlock("x", logLines(100), false))
	f.Event.Labels["huge"] = strings.Repeat("x", 100<<10) // identity, not evidence
	_, err := f.TrimToFit(64<<10, 64<<10)
	if !errors.Is(err, ErrCannotFit) {
		t.Fatalf("got %v, want ErrCannotFit", err)
	}
}

// FuzzTrimToFit: whatever the evidence and the limit, a trimmed finding
// fits, is valid JSON that decodes, and a limit that leaves room for what
// cannot be trimmed is always met.
func FuzzTrimToFit(f *testing.F) {
	f.Add(logLines(2000), "**bold**", "desc", uint16(0))
	f.Add("<&>\u2028\xff", strings.Repeat("é", 3000), strings.Repeat("<", 5000), uint16(4000))
	f.Add("", "", "", uint16(65535))
	f.Fuzz(func(t *testing.T, logText, markdown, desc string, extra uint16) {
		fin := trimFinding(desc, LogTextBlock("src", logText, false), MarkdownBlock(markdown),
			KeyValueBlock([][2]string{{"k", markdown}}))
		// Every text kept at trimKeep bytes, each escaped up to six times
		// over, plus the markers and the note: past this, it must fit.
		skeleton := trimFinding("", LogTextBlock("src", "", false), MarkdownBlock(""), KeyValueBlock([][2]string{{"k", ""}}))
		guaranteed := encodedSize(t, skeleton) + 6*(trimKeep*6+200) + 600
		limit := guaranteed/2 + int(extra)
		if size := encodedSize(t, fin); size > fin.sizeBound() {
			t.Fatalf("%d bytes encoded, over the bound %d", size, fin.sizeBound())
		}
		n, err := fin.TrimToFit(limit, 1<<20)
		if err != nil {
			if limit >= guaranteed || !errors.Is(err, ErrCannotFit) {
				t.Fatalf("limit %d (room from %d): %v", limit, guaranteed, err)
			}
			return
		}
		data, err := MarshalFinding(fin)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > limit {
			t.Fatalf("%d bytes after trimming %d, limit %d", len(data), n, limit)
		}
		if !json.Valid(data) {
			t.Fatal("not valid JSON")
		}
		var back Finding
		if err := UnmarshalFinding(data, &back); err != nil {
			t.Fatal(err)
		}
	})
}
