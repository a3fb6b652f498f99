package main

import (
	"bytes"
	"strings"
	"testing"
)

// The issue's table gives each goal its verdict from the figures: a storm
// that stayed under the limit with nothing lost passes, one that reached
// the limit or lost an alert fails, and the ratios are to raw JetStream
// and to the unlimited run.
func TestIssueTableVerdicts(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	base := func() *results {
		return &results{
			RawJS:      &jsSummary{MsgsPerSec: 100_000},
			Throughput: throughputResult{Alerts: 1000, Accepted: 1000, AlertsPerSec: 60_000, FindingsPerSec: 40_000, DrainComplete: true},
			ProbedRSS:  30 * mib,
			Storm: &stormResult{
				LimitBytes: 256 * mib, Survived: true, RSSPeak: 200 * mib, RSSHighWater: 201 * mib, PipelineRatio: 0.9,
				Throughput:   throughputResult{Alerts: 1000, Accepted: 1000, FindingsPerSec: 36_000, DrainComplete: true},
				SettledGoMem: map[string]float64{"go_memstats_heap_inuse_bytes": 20 * mib}, SettleSeconds: 20,
			},
		}
	}
	tests := []struct {
		name  string
		edit  func(*results)
		fails []string // figures whose verdict must be FAIL; every other one passes
	}{
		{"every goal met", func(*results) {}, nil},
		{"storm reached the limit", func(r *results) { r.Storm.RSSHighWater = 256 * mib }, []string{"storm in a pod: 1,000 alerts"}},
		{"storm OOM-killed", func(r *results) { r.Storm.OOMKills, r.Storm.Survived = 1, false }, []string{"storm in a pod: 1,000 alerts"}},
		{"storm lost an alert", func(r *results) { r.Storm.Throughput.Lost = 1 },
			[]string{"storm in a pod: lost", "lost / duplicates (every phase)"}},
		{"slow pipeline", func(r *results) { r.Throughput.FindingsPerSec = 30_000 }, []string{"pipeline, findings/s"}},
		{"slow storm", func(r *results) { r.Storm.PipelineRatio = 0.79 }, []string{"storm in a pod: pipeline"}},
		{"heap not back", func(r *results) { r.Storm.SettledGoMem["go_memstats_heap_inuse_bytes"] = 65 * mib }, []string{"live heap"}},
		{"idle RSS", func(r *results) { r.ProbedRSS = 36 * mib }, []string{"idle RSS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := base()
			tt.edit(r)
			var b bytes.Buffer
			printIssueTable(&b, r, &options{stormLimitMiB: 256})
			rows := 0
			for line := range strings.SplitSeq(b.String(), "\n") {
				cells := strings.Split(line, "|")
				if len(cells) < 7 || strings.TrimSpace(cells[1]) == "figure" || strings.HasPrefix(strings.TrimSpace(cells[1]), "-") {
					continue
				}
				rows++
				figure, verdict := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[5])
				wantFail := false
				for _, f := range tt.fails {
					wantFail = wantFail || strings.HasPrefix(figure, f)
				}
				switch {
				case verdict == "":
					// a figure without a goal (raw JetStream, the unlimited burst)
				case wantFail && verdict != "FAIL", !wantFail && verdict != "pass":
					t.Errorf("%q: verdict %q, want FAIL=%v", figure, verdict, wantFail)
				}
			}
			if rows != 10 {
				t.Errorf("%d rows, want 10:\n%s", rows, b.String())
			}
		})
	}
}

// With the pipeline's JetStream floor measured, the table says what share
// of raw JetStream the floor is and what share of the floor the pipeline
// reached; with the floor in a pod too, what share of its unlimited rate
// the floor kept under the limit, the storm's ratio against that, and the
// heap the floor held after the same settle as the storm's.
func TestIssueTableShowsThePipelineAgainstItsFloor(t *testing.T) {
	t.Parallel()
	r := &results{
		RawJS:      &jsSummary{MsgsPerSec: 100_000},
		Floor:      &floorResult{FindingsPerSec: 20_000},
		FloorInPod: &floorResult{FindingsPerSec: 12_000, SettleSeconds: 20, SettledHeapInuse: 70 << 20},
		Throughput: throughputResult{Alerts: 1000, Accepted: 1000, AlertsPerSec: 60_000, FindingsPerSec: 8_000, DrainComplete: true},
		Storm: &stormResult{
			LimitBytes: 256 << 20, Survived: true, PipelineRatio: 0.48,
			Throughput:    throughputResult{Alerts: 1000, Accepted: 1000, FindingsPerSec: 3_840, DrainComplete: true},
			SettleSeconds: 20, SettledGoMem: map[string]float64{"go_memstats_heap_inuse_bytes": 80 << 20},
		},
	}
	var b bytes.Buffer
	printIssueTable(&b, r, &options{stormLimitMiB: 256})
	rows := map[string][]string{}
	for line := range strings.SplitSeq(b.String(), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 7 {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[cells[1]] = cells[2:4]
	}
	for figure, want := range map[string][]string{
		"its JetStream floor (same stores, no medic code)": {"20,000", "20% of raw"},
		"pipeline against its floor":                       {"40% of the floor", ""},
		"its JetStream floor in the same pod":              {"12,000", "60% of unlimited"},
		"storm's ratio against the floor's":                {"80%", ""},
		"live heap 20s after the storm drained":            {"80 MiB (RSS 0 MiB)", ""},
		"its JetStream floor's, in the same pod":           {"70 MiB", ""},
	} {
		if got := rows[figure]; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("row %q = %q, want %q:\n%s", figure, got, want, b.String())
		}
	}
}
