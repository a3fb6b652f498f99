package config

import (
	"path/filepath"
	"testing"
	"time"
)

func TestPrometheusConfig(t *testing.T) {
	tests := []struct {
		file    string
		env     []string
		wantErr string
	}{
		{"", nil, ""},
		{"prometheus: {url: 'http://prometheus-operated.monitoring:9090', timeout: 5s}\n", nil, ""},
		{"", []string{"MEDIC_PROMETHEUS_URL=https://thanos.example/", "MEDIC_PROMETHEUS_TIMEOUT=20s"}, ""},
		{"prometheus: {url: 'prometheus:9090'}\n", nil, `prometheus.url: "prometheus:9090" is not an http(s) URL`},
		{"prometheus: {url: 'http://p:9090', timeout: 0s}\n", nil, "prometheus.timeout: must be positive"},
		{"prometheus: {bearer_token_file: /var/run/token}\n", nil, "prometheus.bearer_token_file: set prometheus.url too"},
		{"prometheus: {adress: x}\n", nil, "field adress not found"},
	}
	for _, tt := range tests {
		cfg, ok := loadCase(t, tt.file, tt.env, tt.wantErr)
		if len(tt.env) > 0 && ok && (cfg.Prometheus.URL != "https://thanos.example/" || cfg.Prometheus.Timeout != 20*time.Second) {
			t.Errorf("environment: %+v", cfg.Prometheus)
		}
	}
	// The example documents the default.
	cfg, err := Load(filepath.Join("..", "deploy", "medic.example.yaml"), nil)
	if err != nil || cfg.Prometheus != Default().Prometheus {
		t.Errorf("example prometheus block %+v (%v), default %+v", cfg.Prometheus, err, Default().Prometheus)
	}
}
