package app

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/scheduleevent"
	"github.com/medichq/medic/internal/natstest"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sources/schedule"
)

// schedulePlaybook writes a playbook folder with one on_schedule playbook
// that makes a finding per run.
func schedulePlaybook(t *testing.T, schedule string) string {
	t.Helper()
	dir := t.TempDir()
	pb := "- name: disk-report\n  triggers:\n    - on_schedule: " + schedule + "\n  actions:\n" +
		"    - create_finding: {title: \"Disk report\", severity: info}\n"
	if err := os.WriteFile(filepath.Join(dir, "report.yaml"), []byte(pb), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ticksOf counts the scheduled findings in the findings files by tick.
func ticksOf(t *testing.T, files ...string) map[string]int {
	t.Helper()
	ticks := map[string]int{}
	for _, file := range files {
		for _, f := range readKubeFindings(t, file) {
			if f.Event.Kind != event.KindSchedule || f.Title != "Disk report" {
				t.Errorf("finding %q of kind %s", f.Title, f.Event.Kind)
			}
			ticks[f.Event.Labels[scheduleevent.LabelTick]]++
		}
	}
	return ticks
}

// Two medic replicas sharing one NATS server run each scheduled run once,
// end to end: one replica takes each run, the shared engine and sink
// consumers turn it into one finding, written by whichever replica's sink
// consumer got it.
func TestScheduledPlaybookRunsOnceAcrossReplicas(t *testing.T) {
	ns := natstest.Start(t, nil)
	const runs = 3
	dir := schedulePlaybook(t, "{fixed_delay_repeat: {repeat: 3, seconds_delay: 1}}")
	var files []string
	for range 2 {
		cfg := kubeTestConfig(t)
		cfg.Bus.URL, cfg.Bus.StoreDir = ns.URL(), ""
		cfg.Playbooks.Dirs = []string{dir}
		runApp(t, cfg, &testkit.SyncBuffer{})
		files = append(files, filepath.Join(cfg.DataDir, "findings.jsonl"))
	}
	total := func() int {
		n := 0
		for _, c := range ticksOf(t, files...) {
			n += c
		}
		return n
	}
	testkit.Eventually(t, 30*time.Second, "three scheduled findings", func() bool { return total() >= runs })
	// Wait for the series to be recorded done, so a late double would show.
	js := ns.JetStream()
	testkit.Eventually(t, 10*time.Second, "the series recorded done", func() bool { return seriesDone(t, js) })
	ticks := ticksOf(t, files...)
	lost, dups := 0, 0
	for i := 1; i <= runs; i++ {
		switch n := ticks[strconv.Itoa(i)]; {
		case n == 0:
			lost++
		case n > 1:
			dups += n - 1
		}
	}
	t.Logf("two replicas: runs %d, findings by tick %v, lost %d, duplicates %d", runs, ticks, lost, dups)
	if lost != 0 || dups != 0 || len(ticks) != runs {
		t.Fatalf("findings by tick %v; want ticks 1-%d once each", ticks, runs)
	}
}

// A playbook with on_schedule runs on its own, end to end: scheduler →
// JetStream → engine (create_finding) → file sink, once per tick, and
// stops after its repeat count.
func TestScheduledPlaybookRunsEndToEnd(t *testing.T) {
	cfg := kubeTestConfig(t)
	cfg.Playbooks.Dirs = []string{schedulePlaybook(t, "{fixed_delay_repeat: {repeat: 2, seconds_delay: 1}}")}
	a := runApp(t, cfg, &testkit.SyncBuffer{})
	findings := filepath.Join(cfg.DataDir, "findings.jsonl")
	testkit.Eventually(t, 20*time.Second, "two scheduled findings", func() bool {
		return len(readKubeFindings(t, findings)) >= 2
	})
	// The series is over once its state says so; nothing more can fire.
	testkit.Eventually(t, 10*time.Second, "the series recorded done", func() bool { return seriesDone(t, a.bus.JetStream()) })
	ticks := ticksOf(t, findings)
	t.Logf("scheduled findings by tick %v", ticks)
	if len(ticks) != 2 || ticks["1"] != 1 || ticks["2"] != 1 {
		t.Fatalf("findings by tick %v; want ticks 1 and 2 once each", ticks)
	}
}

// seriesDone reports whether the one schedule in the bucket is done.
func seriesDone(t *testing.T, js jetstream.JetStream) bool {
	t.Helper()
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, schedule.Bucket)
	if err != nil {
		return false
	}
	keys, err := kv.Keys(ctx)
	if err != nil || len(keys) != 1 {
		return false
	}
	e, err := kv.Get(ctx, keys[0])
	return err == nil && strings.Contains(string(e.Value()), `"done":true`)
}
