package kube

import (
	"regexp"
	"strings"
	"testing"
)

// A real-looking crash log: a Spring Boot service that fails to reach its
// database, with the secrets applications commonly print.
const crashLog = `2025-03-01T11:58:01.112Z  INFO 1 --- [main] c.e.cart.CartApplication : Starting CartApplication v1.42.0 using Java 21.0.2
2025-03-01T11:58:01.115Z  INFO 1 --- [main] c.e.cart.CartApplication : No active profile set, falling back to 1 default profile: "default"
2025-03-01T11:58:02.840Z DEBUG 1 --- [main] o.s.web.client.RestTemplate : HTTP GET https://auth.internal/v1/keys with header Authorization: Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjYXJ0In0.c2lnbmF0dXJl
2025-03-01T11:58:03.001Z  INFO 1 --- [main] com.zaxxer.hikari.HikariDataSource : HikariPool-1 - Starting... url=jdbc:postgresql://cart:s3cr3t-Pa55@db.shop.svc:5432/cart
2025-03-01T11:58:03.377Z  WARN 1 --- [main] o.s.b.a.jdbc.DataSourceInitializer : config dump: {"user": "cart", "password": "s3cr3t-Pa55", "pool": 10}
2025-03-01T11:58:04.402Z ERROR 1 --- [main] com.zaxxer.hikari.pool.HikariPool : HikariPool-1 - Exception during pool initialization.
org.postgresql.util.PSQLException: FATAL: password authentication failed for user "cart"
	at org.postgresql.core.v3.ConnectionFactoryImpl.doAuthentication(ConnectionFactoryImpl.java:693)
2025-03-01T11:58:04.410Z  INFO 1 --- [main] aws : using credentials AKIAIOSFODNN7EXAMPLE for s3://cart-exports
2025-03-01T11:58:04.415Z ERROR 1 --- [main] o.s.boot.SpringApplication : Application run failed
`

func TestProcessLogs(t *testing.T) {
	lines := strings.Count(crashLog, "\n")
	tests := []struct {
		name      string
		opts      LogOptions
		want      []string // lines expected, in order
		absent    []string
		truncated bool
		redacted  int
	}{
		{
			name: "everything, redacted by default",
			opts: LogOptions{TailLines: 100, Redact: DefaultRedactions()},
			want: []string{
				"Authorization: Bearer [REDACTED]",
				"url=jdbc:postgresql://cart:[REDACTED]@db.shop.svc:5432/cart",
				`"password": "[REDACTED]"`,
				"\tat org.postgresql.core.v3.ConnectionFactoryImpl.doAuthentication(ConnectionFactoryImpl.java:693)",
				"using credentials [REDACTED] for s3://cart-exports",
			},
			absent:   []string{"eyJhbGciOi", "AKIAIOSFODNN7EXAMPLE", "s3cr3t"},
			redacted: 4,
		},
		{
			name:      "tail",
			opts:      LogOptions{TailLines: 2},
			want:      []string{"using credentials AKIAIOSFODNN7EXAMPLE", "Application run failed"},
			absent:    []string{"Starting CartApplication"},
			truncated: true,
		},
		{
			name:      "filter, then tail",
			opts:      LogOptions{TailLines: 2, Filter: regexp.MustCompile(`ERROR|FATAL`)},
			want:      []string{"FATAL: password authentication failed", "Application run failed"},
			absent:    []string{"Exception during pool initialization"},
			truncated: true,
		},
		{
			name:   "filter without tail",
			opts:   LogOptions{TailLines: 100, Filter: regexp.MustCompile(`^\S+ +WARN`)},
			want:   []string{"config dump"},
			absent: []string{"INFO"},
		},
		{
			name:     "user patterns, with and without a group",
			opts:     LogOptions{Redact: []*regexp.Regexp{regexp.MustCompile(`postgresql://\w+:([^@]+)@`), regexp.MustCompile(`s3://[\w-]+`)}},
			want:     []string{"jdbc:postgresql://cart:[REDACTED]@db.shop.svc", "for [REDACTED]"},
			absent:   []string{"s3cr3t-Pa55@db"},
			redacted: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ProcessLogs(crashLog, tt.opts)
			pos := 0
			for _, w := range tt.want {
				i := strings.Index(res.Text[pos:], w)
				if i < 0 {
					t.Errorf("output lacks %q (in order):\n%s", w, res.Text)
					continue
				}
				pos += i
			}
			for _, a := range tt.absent {
				if strings.Contains(res.Text, a) {
					t.Errorf("output contains %q:\n%s", a, res.Text)
				}
			}
			if res.Truncated != tt.truncated {
				t.Errorf("truncated = %v, want %v", res.Truncated, tt.truncated)
			}
			if res.Redacted != tt.redacted {
				t.Errorf("redacted %d matches, want %d:\n%s", res.Redacted, tt.redacted, res.Text)
			}
			if res.Kept+res.Dropped != lines {
				t.Errorf("kept %d + dropped %d != %d lines", res.Kept, res.Dropped, lines)
			}
			if res.Text != "" && !strings.HasSuffix(res.Text, "\n") {
				t.Errorf("text does not end with a newline")
			}
		})
	}
}

func TestProcessLogsEdges(t *testing.T) {
	if r := ProcessLogs("", LogOptions{TailLines: 5}); r.Text != "" || r.Truncated {
		t.Errorf("empty: %+v", r)
	}
	if r := ProcessLogs("a\r\nb\r\n", LogOptions{TailLines: 5}); r.Text != "a\nb\n" {
		t.Errorf("CRLF: %q", r.Text)
	}
	if r := ProcessLogs("a\nb\n", LogOptions{TailLines: 5, Filter: regexp.MustCompile("zzz")}); r.Text != "" || r.Dropped != 2 {
		t.Errorf("nothing matches: %+v", r)
	}
	if r := ProcessLogs("fake logs", LogOptions{TailLines: 100}); r.Text != "fake logs\n" || r.Truncated {
		t.Errorf("fake logs: %+v", r)
	}
	// A private key block header is redacted.
	if r := ProcessLogs("-----BEGIN RSA PRIVATE KEY-----\n", LogOptions{Redact: DefaultRedactions()}); !strings.Contains(r.Text, Redaction) {
		t.Errorf("private key: %q", r.Text)
	}
	// Basic auth in a URL.
	if r := ProcessLogs("GET https://admin:hunter2@example.com/x\n", LogOptions{Redact: DefaultRedactions()}); r.Text != "GET https://admin:[REDACTED]@example.com/x\n" {
		t.Errorf("URL credentials: %q", r.Text)
	}
}
