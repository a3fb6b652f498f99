package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/triggers/schedule"
)

// A playbook with on_schedule runs on its own, end to end: scheduler →
// JetStream → engine (create_finding) → file sink, once per tick, and
// stops after its repeat count.
func TestScheduledPlaybookRunsEndToEnd(t *testing.T) {
	cfg := kubeTestConfig(t)
	dir := t.TempDir()
	pb := `- name: disk-report
  triggers:
    - on_schedule: {fixed_delay_repeat: {repeat: 2, seconds_delay: 1}}
  actions:
    - create_finding: {title: "Disk report", severity: info}
`
	if err := os.WriteFile(filepath.Join(dir, "report.yaml"), []byte(pb), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Playbooks.Dirs = []string{dir}
	a := runApp(t, cfg, &syncBuffer{})
	findings := filepath.Join(cfg.DataDir, "findings.jsonl")
	testkit.Eventually(t, 20*time.Second, "two scheduled findings", func() bool {
		return len(readKubeFindings(t, findings)) >= 2
	})
	// The series is over once its state says so; nothing more can fire.
	ctx := context.Background()
	kv, err := a.bus.JetStream().KeyValue(ctx, schedule.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the series recorded done", func() bool {
		keys, err := kv.Keys(ctx)
		if err != nil || len(keys) != 1 {
			return false
		}
		e, err := kv.Get(ctx, keys[0])
		return err == nil && strings.Contains(string(e.Value()), `"done":true`)
	})
	got := readKubeFindings(t, findings)
	ticks := map[string]int{}
	for _, f := range got {
		if f.Event.Kind != event.KindSchedule || f.Title != "Disk report" {
			t.Errorf("finding %q of kind %s", f.Title, f.Event.Kind)
		}
		ticks[f.Event.Labels[schedule.LabelTick]]++
	}
	t.Logf("scheduled findings: %d, by tick %v", len(got), ticks)
	if len(got) != 2 || ticks["1"] != 1 || ticks["2"] != 1 {
		t.Fatalf("findings by tick %v; want ticks 1 and 2 once each", ticks)
	}
}
