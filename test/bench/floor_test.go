package main

import (
	"testing"

	"github.com/medichq/medic/config"
)

// The floor does the work it stands for: every event, claim and finding is
// stored once (pipelineFloor checks the three streams before it answers)
// and the sink acked every finding.
func TestPipelineFloorStoresEveryAlertsMessages(t *testing.T) {
	t.Parallel()
	const n = 2000
	body := []byte(`{"id":"x","kind":"prometheus_alert","labels":{"alertname":"KubePodCrashLooping"}}`)
	f, err := pipelineFloor(t.TempDir(), n, body, config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if f.Alerts != n || f.FindingsPerSec <= 0 || f.Seconds <= 0 {
		t.Errorf("floor = %+v, want %d alerts at a positive rate", f, n)
	}
	if def := config.Default(); f.EngineWorkers != def.Engine.Workers || f.SinkWorkers != def.Engine.SinkWorkers {
		t.Errorf("floor ran %d engine and %d sink workers, want medic's defaults %d and %d",
			f.EngineWorkers, f.SinkWorkers, def.Engine.Workers, def.Engine.SinkWorkers)
	}
}
