package config

import (
	"testing"
	"time"
)

// The findings stream's duplicate window is its own setting: short by
// default (a storm's findings are not held in memory for ten minutes), the
// events' window when set to 0, never negative.
func TestFindingsDedupWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file    string
		env     []string
		want    time.Duration // FindingsWindow()
		wantErr string
	}{
		{"", nil, 10 * time.Second, ""},
		{"bus: {findings_dedup_window: 1m}\n", nil, time.Minute, ""},
		{"bus: {findings_dedup_window: 0s, dedup_window: 5m}\n", nil, 5 * time.Minute, ""},
		{"", []string{"MEDIC_BUS_FINDINGS_DEDUP_WINDOW=30s"}, 30 * time.Second, ""},
		{"bus: {findings_dedup_window: -1s}\n", nil, 0, "bus.findings_dedup_window: must not be negative"},
		{"bus: {finding_dedup_window: 1m}\n", nil, 0, "field finding_dedup_window not found"},
	}
	for _, tt := range tests {
		cfg, ok := loadCase(t, tt.file, tt.env, tt.wantErr)
		if got := cfg.Bus.FindingsWindow(); ok && got != tt.want {
			t.Errorf("%q %v: findings window %s, want %s", tt.file, tt.env, got, tt.want)
		}
	}
}
