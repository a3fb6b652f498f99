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

// The two key-value buckets with one key per alert or per finding are
// bounded by a number of records (bus/kvbucket.go): the defaults, a file
// and the environment set them, and a bound too small to do its job is
// refused with the field and the default named.
func TestBucketRecordBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file                 string
		env                  []string
		wantAlerts, wantDlvr int64
		wantErr              string
	}{
		{"", nil, 100_000, 100_000, ""},
		{"bus: {alert_state_max_records: 500000, delivery_max_records: 20000}\n", nil, 500_000, 20_000, ""},
		{"", []string{"MEDIC_BUS_ALERT_STATE_MAX_RECORDS=250000", "MEDIC_BUS_DELIVERY_MAX_RECORDS=5000"}, 250_000, 5_000, ""},
		{"bus: {alert_state_max_records: 10}\n", nil, 0, 0, "bus.alert_state_max_records: 10 is below 1000"},
		{"bus: {delivery_max_records: 999}\n", nil, 0, 0, "bus.delivery_max_records: 999 is below 1000 (each record costs about 100 bytes of memory; 0 means the default, 100000)"},
		{"bus: {delivery_max_records: 0, alert_state_max_records: 0}\n", nil, 100_000, 100_000, ""},
		{"bus: {delivery_max_record: 5000}\n", nil, 0, 0, "field delivery_max_record not found"},
	}
	for _, tt := range tests {
		cfg, ok := loadCase(t, tt.file, tt.env, tt.wantErr)
		if !ok {
			continue
		}
		if cfg.Bus.AlertStateRecords() != tt.wantAlerts || cfg.Bus.DeliveryRecords() != tt.wantDlvr {
			t.Errorf("%q %v: alert state bound %d, delivery bound %d; want %d, %d",
				tt.file, tt.env, cfg.Bus.AlertStateRecords(), cfg.Bus.DeliveryRecords(), tt.wantAlerts, tt.wantDlvr)
		}
	}
}
