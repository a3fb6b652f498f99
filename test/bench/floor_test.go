package main

import (
	"testing"
	"time"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/memtrim"
)

// The floor does the work it stands for, in every shape: each event, claim
// and finding the shape makes is stored once (pipelineFloor checks the
// three streams before it answers) and every alert reached the end.
func TestPipelineFloorStoresEveryAlertsMessages(t *testing.T) {
	t.Parallel()
	const n = 1000
	body := []byte(`{"id":"x","kind":"prometheus_alert","labels":{"alertname":"KubePodCrashLooping"}}`)
	for _, shape := range floorShapes {
		t.Run(string(shape), func(t *testing.T) {
			t.Parallel()
			f, err := pipelineFloor(t.TempDir(), n, body, config.Default(), shape, 0)
			if err != nil {
				t.Fatal(err)
			}
			if f.Shape != shape || f.Alerts != n || f.FindingsPerSec <= 0 || f.Seconds <= 0 {
				t.Errorf("floor = %+v, want %d alerts in shape %q at a positive rate", f, n, shape)
			}
			if f.EventsPerSec < f.FindingsPerSec {
				// The last event is stored before its finding can be acked.
				t.Errorf("events stored at %.0f/s, slower than the findings acked (%.0f/s)", f.EventsPerSec, f.FindingsPerSec)
			}
			if def := config.Default(); f.EngineWorkers != def.Engine.Workers || f.SinkWorkers != def.Engine.SinkWorkers {
				t.Errorf("floor ran %d engine and %d sink workers, want medic's defaults %d and %d",
					f.EngineWorkers, f.SinkWorkers, def.Engine.Workers, def.Engine.SinkWorkers)
			}
		})
	}
}

// The floor in a pod runs in a process of its own (this test binary again,
// through TestMain) under the Go limit medic derives from the pod's limit,
// in a memory cgroup where one can be made.
func TestFloorInPodRunsUnderThePodsLimits(t *testing.T) {
	t.Parallel()
	const n, limit = 2000, 256 << 20
	f, err := floorInPod(t.TempDir(), n, []byte(`{"id":"x","kind":"prometheus_alert"}`), limit, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if f.Alerts != n || f.FindingsPerSec <= 0 {
		t.Errorf("floor = %+v, want %d alerts at a positive rate", f, n)
	}
	if want := int64(memtrim.GoLimit(limit)); f.GoMemLimitBytes != want {
		t.Errorf("ran with a Go limit of %d, want %d", f.GoMemLimitBytes, want)
	}
	if f.Enforcement == "" || f.OOMKills != 0 {
		t.Errorf("enforcement %q, OOM kills %d", f.Enforcement, f.OOMKills)
	}
	if f.SettleSeconds != 0.1 || f.SettledHeapInuse <= 0 || f.SettledHeapInuse > limit {
		t.Errorf("settled heap %d bytes after %gs, want it read after 0.1s and under the limit", f.SettledHeapInuse, f.SettleSeconds)
	}
	t.Logf("%s: %.0f findings/s, cgroup peak %d, settled heap %d", f.Enforcement, f.FindingsPerSec, f.CgroupPeak, f.SettledHeapInuse)
}
