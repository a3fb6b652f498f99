package redact

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/event"
)

func TestRedactText(t *testing.T) {
	t.Parallel()
	r, err := New(Options{Patterns: []string{`cust-[0-9]{6}`}, EnvAllow: []string{"LOG_LEVEL"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in string
		gone     []string // must not survive
		keep     []string // must stay readable
		kinds    Redaction
	}{
		{"password in a URL", "dial postgres://app:S3cr3t@db:5432/shop: refused",
			[]string{"S3cr3t"}, []string{"postgres://app:", "@db:5432/shop"}, Redaction{"connection string": 1}},
		{"env in YAML", "env:\n- name: DB_URL\n  value: opaque-value-1\n- name: LOG_LEVEL\n  value: debug\n",
			[]string{"opaque-value-1"}, []string{"name: DB_URL", "value: debug"}, Redaction{KindEnv: 1}},
		{"env in JSON", `{"env":[{"name":"API","value":"opaque-value-2"},{"name":"LOG_LEVEL","value":"info"}]}`,
			[]string{"opaque-value-2"}, []string{`"LOG_LEVEL","value":"info"`}, Redaction{KindEnv: 1}},
		{"last-applied block scalar", "annotations:\n  kubectl.kubernetes.io/last-applied-configuration: |\n    {\"spec\":1}\n    more\n  other: x\n",
			[]string{`{"spec":1}`, "more"}, []string{"other: x"}, Redaction{KindLastApplied: 1}},
		{"last-applied one line", "  kubectl.kubernetes.io/last-applied-configuration: '{\"a\":1}'\n",
			[]string{`{"a":1}`}, nil, Redaction{KindLastApplied: 1}},
		{"token shapes", "slack xoxb-1234567890-abcdefghij gh ghp_abcdefghijklmnopqrstuvwxyz0123456789 aws AKIAABCDEFGHIJKLMNOP",
			[]string{"xoxb-1234567890", "ghp_abcdef", "AKIAABCDEFGHIJKLMNOP"}, []string{"slack", "aws"},
			Redaction{"slack token": 1, "github token": 1, "aws access key": 1}},
		{"jwt and bearer", "Authorization: Bearer eyJhbGciOiJI.eyJzdWIiOiIx.c2lnbmF0dXJl",
			[]string{"eyJhbGciOiJI"}, []string{"Authorization: Bearer "}, nil},
		{"custom pattern", "customer cust-123456 failed", []string{"cust-123456"}, []string{"customer"}, Redaction{KindCustom: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, found := r.Redact(tt.in)
			for _, g := range tt.gone {
				if strings.Contains(out, g) {
					t.Errorf("%q survived:\n%s", g, out)
				}
			}
			for _, k := range tt.keep {
				if !strings.Contains(out, k) {
					t.Errorf("lost %q:\n%s", k, out)
				}
			}
			for k, n := range tt.kinds {
				if found[k] != n {
					t.Errorf("%s: %d, want %d (%v)", k, found[k], n, found)
				}
			}
			if again, more := r.Redact(out); more.Total() != 0 || again != out {
				t.Errorf("a second pass changed it (%v)", more)
			}
		})
	}
}

func TestRedactJSONObject(t *testing.T) {
	t.Parallel()
	pod := `{"kind":"Pod","metadata":{"name":"cart","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"x\":1}","team":"shop"}},
	"spec":{"containers":[{"name":"app","env":[{"name":"DB_PASS","value":"hunter2hunter2"},{"name":"PORT","value":"8080"},
	{"name":"FROM","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}]}]}}`
	out, found := Default().JSON([]byte(pod))
	s := string(out)
	if strings.Contains(s, "hunter2hunter2") || strings.Contains(s, `{\"x\":1}`) {
		t.Errorf("secrets survived: %s", s)
	}
	if !strings.Contains(s, `"8080"`) || !strings.Contains(s, `"team":"shop"`) || !strings.Contains(s, "secretKeyRef") {
		t.Errorf("lost ordinary fields: %s", s)
	}
	if found[KindEnv] != 1 || found[KindLastApplied] != 1 {
		t.Errorf("found %v", found)
	}
	secret := `{"kind":"Secret","data":{"a":"aHVudGVyMg=="},"stringData":{"b":"plain"}}`
	out, found = Default().JSON([]byte(secret))
	if strings.Contains(string(out), "aHVudGVyMg==") || strings.Contains(string(out), "plain") || found[KindSecretData] != 2 {
		t.Errorf("secret data survived (%v): %s", found, out)
	}
	clean := []byte(`{"b": 1, "a": "x"}`)
	if out, found := Default().JSON(clean); string(out) != string(clean) || found.Total() != 0 {
		t.Errorf("a clean document changed: %s", out)
	}
}

func TestRedactFinding(t *testing.T) {
	t.Parallel()
	raw, _ := json.Marshal(map[string]any{"kind": "Pod", "spec": map[string]any{"containers": []any{
		map[string]any{"env": []any{map[string]any{"name": "TOKEN_X", "value": "raw-env-secret"}}}}}})
	f := event.NewFinding(event.Event{
		Title: "db down", Description: "cannot reach postgres://app:S3cr3t@db:5432",
		Labels:      map[string]string{"alertname": "DBDown"},
		Annotations: map[string]string{LastAppliedAnnotation: `{"env":"x"}`, "runbook": "see postgres://u:S3cr3t@h"},
		Raw:         raw,
	}, t0())
	f.Add(event.Enrichment{Title: "YAML", Blocks: []event.Block{
		event.LogTextBlock("pod (YAML)", "- name: DB_PASSWORD\n  value: yaml-env-secret\n", false),
		event.KeyValueBlock([][2]string{{"dsn", "mysql://root:S3cr3t@m/db"}}),
		event.LinksBlock(event.Link{Label: "db", URL: "https://u:S3cr3t@db.example/"}),
	}})
	found := Default().Finding(f)
	b, _ := json.Marshal(f)
	for _, s := range []string{"S3cr3t", "raw-env-secret", "yaml-env-secret", `{\"env\":\"x\"}`} {
		if strings.Contains(string(b), s) {
			t.Errorf("%q survived in %s", s, b)
		}
	}
	if found.Total() != 8 {
		t.Errorf("found %v, want 8", found)
	}
	if !strings.HasPrefix(found.Note(), "8 values redacted (") {
		t.Errorf("note %q", found.Note())
	}
	if again := Default().Finding(f); again.Total() != 0 {
		t.Errorf("a second pass found %v", again)
	}
}

func t0() time.Time { return time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC) }
