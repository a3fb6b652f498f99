package main

import (
	"strconv"
	"testing"
	"time"

	"github.com/medichq/medic/internal/fixtures"
	"github.com/medichq/medic/sources/alertmanager"
)

func testGen(t *testing.T) *alertGen {
	t.Helper()
	rules, err := loadRules(fixtures.Path("alert-rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	return &alertGen{rules: rules, base: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
}

// The harness's bodies are real webhook messages: medic decodes them, and
// every alert becomes an event with its own ID and bench_id.
func TestBodiesDecodeToDistinctEvents(t *testing.T) {
	gen := testGen(t)
	ids := map[string]bool{}
	for _, req := range batches(1, 500, 50) {
		body, err := gen.body(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := alertmanager.Decode(body)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		evs := alertmanager.ToEvents(msg, alertmanager.DefaultSource, time.Now())
		if len(evs) != len(req) {
			t.Fatalf("%d events from %d alerts", len(evs), len(req))
		}
		for i, ev := range evs {
			if ids[ev.ID] {
				t.Fatalf("event ID %s twice", ev.ID)
			}
			ids[ev.ID] = true
			if got, want := ev.Labels["bench_id"], strconv.Itoa(req[i]); got != want {
				t.Fatalf("bench_id %q, want %q", got, want)
			}
		}
	}
	if len(ids) != 500 {
		t.Fatalf("%d distinct IDs", len(ids))
	}
}

func TestExpand(t *testing.T) {
	labels := map[string]string{"namespace": "shop", "pod": "cart-1"}
	got := expand(`Pod {{ $labels.namespace }}/{{$labels.pod}} {{ $value | humanize }} {{ $labels.missing }}x {{ .Other }}`, labels)
	if want := `Pod shop/cart-1 42 x {{ .Other }}`; got != want {
		t.Errorf("expand = %q, want %q", got, want)
	}
}

func TestBatches(t *testing.T) {
	b := batches(10, 7, 3)
	if len(b) != 3 || len(b[2]) != 1 || b[0][0] != 10 || b[2][0] != 16 {
		t.Errorf("batches(10, 7, 3) = %v", b)
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	d := summarize(ds)
	if d.P50 != 50 || d.P99 != 99 || d.Max != 100 || d.N != 100 {
		t.Errorf("summarize = %+v", d)
	}
	if summarize(nil).N != 0 {
		t.Error("empty")
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 158000.4: "158,000", 1234567: "1,234,567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}
