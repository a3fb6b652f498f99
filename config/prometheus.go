package config

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// PrometheusConfig is where prometheus_enricher sends its queries. An empty
// URL leaves the action without a Prometheus: it then adds a note saying so.
type PrometheusConfig struct {
	// URL of the Prometheus (or Thanos, Mimir, VictoriaMetrics) HTTP API,
	// e.g. http://prometheus-operated.monitoring:9090.
	URL string `yaml:"url"`
	// BearerTokenFile is sent as "Authorization: Bearer …", read on every
	// request so a rotated service-account token is picked up.
	BearerTokenFile string `yaml:"bearer_token_file"`
	// Timeout bounds one query.
	Timeout time.Duration `yaml:"timeout"`
}

func defaultPrometheus() PrometheusConfig {
	return PrometheusConfig{Timeout: 10 * time.Second}
}

func (c *Config) validatePrometheus() error {
	p := c.Prometheus
	if p.URL == "" {
		if p.BearerTokenFile != "" {
			return errors.New("prometheus.bearer_token_file: set prometheus.url too")
		}
		return nil
	}
	u, err := url.Parse(p.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("prometheus.url: %q is not an http(s) URL", p.URL)
	}
	if p.Timeout <= 0 {
		return errors.New("prometheus.timeout: must be positive")
	}
	return nil
}
