package event

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// codecCases cover what differs between JSON encoders: map key order, HTML
// and line-separator escaping, control characters, invalid UTF-8, omitempty
// and omitzero, raw messages that are not compact, time zones and
// nanoseconds, nil against empty slices, bytes as base64.
func codecCases() []Finding {
	starts := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	full := Event{
		ID: "0123456789abcdef0123456789abcdef", Kind: KindPrometheusAlert, Source: "alertmanager",
		Status: StatusFiring, Severity: SeverityCritical,
		Title:       `KubePodCrashLooping <shop/cart-7d9> & "friends"`,
		Description: "line one\nline two\ttabbed \u2028 \u2029 \x01 é 日本",
		Labels:      map[string]string{"z": "last", "alertname": "KubePodCrashLooping", "a": "<>&", "": "empty key"},
		Annotations: map[string]string{"runbook_url": "https://runbooks.example/x?a=1&b=2"},
		Subject:     Subject{Kind: "Pod", Namespace: "shop", Name: "cart-7d9", Container: "app", Node: "n1"},
		StartsAt:    starts, EndsAt: starts.Add(time.Minute), Fingerprint: "f00d",
		GeneratorURL: "http://prometheus/graph?g0.expr=up%7Bjob%3D%22x%22%7D&g0.tab=1",
		ExternalURL:  "http://alertmanager:9093", ReceivedAt: starts.UTC(),
		Raw: json.RawMessage(" {\"a\": [1, 2.50, \"<\"] ,\n \"b\":null}"),
	}
	return []Finding{
		{},
		{ID: "minimal", Event: Event{ID: "minimal", Title: "bad \xff\xfe utf8"}},
		{
			ID: full.ID, Title: full.Title, Description: full.Description, Severity: full.Severity, Event: full,
			Playbooks: []string{"builtin/default-alert-enricher"}, PlaybookSet: "sha256:abc",
			Enrichments: []Enrichment{
				{Title: "Labels", Source: "default_enricher", Blocks: []Block{
					KeyValueBlock([][2]string{{"alertname", "X"}, {"pod", "<p>"}}),
					MarkdownBlock("*bold* `code` <https://x|y>"),
					LogTextBlock("shop/cart-7d9 app (previous)", "panic: nil map\n\tat main.go:12\n", true),
					LinksBlock(Link{Label: "Runbook", URL: "https://r.example/a&b"}),
					{Kind: BlockImage, Image: &ImageBlock{Name: "graph.png", PNG: []byte{0x89, 'P', 'N', 'G', 0, 0xff}}},
					{Kind: BlockTable, Table: &TableBlock{Headers: []string{}, Rows: nil}},
				}},
				{Title: "empty", Blocks: nil},
			},
			CreatedAt:       starts.Add(time.Second),
			PlaybookSources: []PlaybookSource{{Playbook: "p", Location: "team@1a2b:alerts.yaml:12", Repo: "r", Commit: "c"}},
			AskAI:           &AskAI{Model: "llama3", MaxTokens: 512},
		},
	}
}

func TestMarshalMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for i, f := range codecCases() {
		want, err := json.Marshal(&f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := MarshalFinding(&f)
		if err != nil {
			t.Fatalf("case %d: MarshalFinding: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("case %d: finding encodings differ\nencoding/json %s\nMarshalFinding %s", i, want, got)
		}

		want, _ = json.Marshal(&f.Event)
		got, err = MarshalEvent(&f.Event)
		if err != nil {
			t.Fatalf("case %d: MarshalEvent: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("case %d: event encodings differ\nencoding/json %s\nMarshalEvent  %s", i, want, got)
		}
	}
}

func TestUnmarshalMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for i, f := range codecCases() {
		data, _ := json.Marshal(&f)
		var want, got Finding
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		if err := UnmarshalFinding(data, &got); err != nil {
			t.Fatalf("case %d: UnmarshalFinding: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("case %d: findings decode differently\nencoding/json %+v\nUnmarshalFinding %+v", i, want, got)
		}

		data, _ = json.Marshal(&f.Event)
		var wantEv, gotEv Event
		_ = json.Unmarshal(data, &wantEv)
		if err := UnmarshalEvent(data, &gotEv); err != nil {
			t.Fatalf("case %d: UnmarshalEvent: %v", i, err)
		}
		if !reflect.DeepEqual(gotEv, wantEv) {
			t.Errorf("case %d: events decode differently\nencoding/json %+v\nUnmarshalEvent %+v", i, wantEv, gotEv)
		}
	}
	if err := UnmarshalEvent([]byte(`{"id":`), new(Event)); err == nil {
		t.Error("UnmarshalEvent accepted truncated JSON")
	}
}

// An event an older medic left in a stream (or a finding in the store) may
// carry "suppressedTriggers", the Kubernetes detector's rate-limit refusals
// from before the engine applied every limit: it still decodes.
func TestUnmarshalEventFromAnOlderMedic(t *testing.T) {
	t.Parallel()
	data := []byte(`{"id":"e1","kind":"pod_crash_loop","subject":{"kind":"Pod","namespace":"shop","name":"cart-1"},` +
		`"startsAt":"2026-12-04T10:00:00Z","receivedAt":"2026-12-04T10:00:01Z","suppressedTriggers":["0123456789abcdef"]}`)
	var ev Event
	if err := UnmarshalEvent(data, &ev); err != nil {
		t.Fatalf("UnmarshalEvent: %v", err)
	}
	var f Finding
	if err := UnmarshalFinding([]byte(`{"id":"f1","event":`+string(data)+`}`), &f); err != nil {
		t.Fatalf("UnmarshalFinding: %v", err)
	}
	if ev.ID != "e1" || ev.Subject.Name != "cart-1" || f.Event.ID != "e1" {
		t.Errorf("decoded event %+v, finding's event %+v", ev, f.Event)
	}
}

// FuzzMarshalEvent holds MarshalEvent to encoding/json's bytes for any
// strings and times an event can carry.
func FuzzMarshalEvent(f *testing.F) {
	f.Add("KubePodCrashLooping", "shop", "<b>&amp;</b>", "\u2028\x00\xff", int64(0), int64(0), 0)
	f.Add("", "", "", "", int64(1764000000123456789), int64(-62135596800000000), 3600)
	f.Add("\t\b\f\r\n\"\\", "\u2029é日本", "\x7f\x1f", "\xed\xa0\x80", int64(253402300799999999), int64(1), -45296)
	f.Fuzz(func(t *testing.T, title, key, value, desc string, nanos, endNanos int64, offset int) {
		zone := time.FixedZone("z", offset%(48*3600))
		ev := Event{
			ID: title, Kind: Kind(key), Source: value, Status: Status(desc), Severity: Severity(title),
			Title: title, Description: desc,
			Labels:      map[string]string{key: value, value: key, "alertname": title},
			Annotations: map[string]string{desc: value},
			Subject:     Subject{Kind: key, Namespace: value, Name: desc, Container: title, Node: key},
			StartsAt:    time.Unix(0, nanos).In(zone),
			EndsAt:      time.Unix(0, endNanos).UTC(),
			Fingerprint: value, GeneratorURL: desc, ExternalURL: key,
			ReceivedAt: time.Unix(0, nanos).UTC(),
		}
		if endNanos == 0 {
			ev.EndsAt = time.Time{}
		}
		if len(key)%2 == 0 { // empty and nil maps and slices too
			ev.Labels, ev.Annotations = map[string]string{}, nil
		}
		want, werr := json.Marshal(&ev)
		got, gerr := MarshalEvent(&ev)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("errors differ: encoding/json %v, MarshalEvent %v", werr, gerr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("encodings differ\nencoding/json %q\nMarshalEvent  %q", want, got)
		}
		// A batch: the same event after another one, in a reused buffer.
		enc := NewBatchEncoder()
		for range 2 {
			enc.Reset()
			first, ferr := enc.Encode(&Event{ID: desc, Title: value})
			second, serr := enc.Encode(&ev)
			if ferr != nil || (serr == nil) != (werr == nil) {
				t.Fatalf("BatchEncoder errors %v, %v; encoding/json %v", ferr, serr, werr)
			}
			if werr == nil && !bytes.Equal(second, want) {
				t.Fatalf("BatchEncoder differs\nencoding/json %q\nBatchEncoder  %q", want, second)
			}
			if want0, _ := json.Marshal(&Event{ID: desc, Title: value}); !bytes.Equal(first, want0) {
				t.Fatalf("BatchEncoder's first event changed: %q, want %q", first, want0)
			}
		}
		// A finding around the event, as bus.PublishFindings encodes it in
		// a reused encoder.
		fd := NewFinding(ev, ev.ReceivedAt)
		fd.Description = value
		wantF, werrF := json.Marshal(fd)
		enc.Reset()
		gotF, gerrF := enc.EncodeFinding(fd)
		if (werrF == nil) != (gerrF == nil) || werrF == nil && !bytes.Equal(gotF, wantF) {
			t.Fatalf("EncodeFinding %q (%v), encoding/json %q (%v)", gotF, gerrF, wantF, werrF)
		}
	})
}
