package webhook

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/webhookevent"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sources/alertmanager"
	"github.com/medichq/medic/sources/httpauth"
)

var received = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

// Each preset turns its tool's sample payload into the event in its golden
// file.
func TestPresetsMapTheirSamples(t *testing.T) {
	t.Parallel()
	for name := range Presets {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(filepath.Join("testdata", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			src := SourceConfig{Name: name, Preset: name, Auth: AuthConfig{BearerToken: "t"}}
			if err := ValidateSource(&src); err != nil {
				t.Fatal(err)
			}
			m, err := compileSource(&src)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := Parse(m, webhookevent.SourcePrefix+name, body, received)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(ev, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			testkit.Golden(t, filepath.Join("testdata", name+".event.golden.json"), append(got, '\n'))
			// The same body posted again is the same event.
			again, err := Parse(m, webhookevent.SourcePrefix+name, body, received.Add(time.Minute))
			if err != nil || again.ID != ev.ID {
				t.Errorf("a retried body got ID %s, first %s (err %v)", again.ID, ev.ID, err)
			}
		})
	}
}

func TestMappingErrorsNameTheField(t *testing.T) {
	t.Parallel()
	compileErrs := []struct {
		mapping map[string]string
		want    string
	}{
		{map[string]string{"description": "body.x"}, "mapping.title: required"},
		{map[string]string{"title": "body.message +"}, "mapping.title (body.message +)"},
		{map[string]string{"title": "body.m", "severity": "nosuch(1)"}, "mapping.severity"},
		{map[string]string{"title": "body.m", "subject.pod": "body.p"}, "mapping.subject.pod: not a field"},
	}
	for _, tt := range compileErrs {
		_, err := Compile(tt.mapping)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Compile(%v) = %v, want an error containing %q", tt.mapping, err, tt.want)
		}
	}

	evalErrs := []struct {
		mapping map[string]string
		body    string
		want    string
	}{
		{map[string]string{"title": "body.message"}, `{"msg": "x"}`, "mapping.title (body.message): no such key: message"},
		{map[string]string{"title": "body.message"}, `{"message": ""}`, "mapping.title (body.message): evaluated to an empty string"},
		{map[string]string{"title": "body.message"}, `{"message": {"a": 1}}`, "not a string"},
		{map[string]string{"title": `"t"`, "labels": "body.l"}, `{"l": [1, 2]}`, "mapping.labels (body.l)"},
		{map[string]string{"title": `"t"`, "labels": "body.l"}, `{"l": {"a": {"b": 1}}}`, `the value of "a"`},
		{map[string]string{"title": `"t"`, "starts_at": "body.at"}, `{"at": "yesterday"}`, "mapping.starts_at (body.at): not an RFC 3339 time"},
		{map[string]string{"title": "body.message"}, `[1, 2]`, "mapping.title"},
	}
	for _, tt := range evalErrs {
		m, err := Compile(tt.mapping)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(m, "webhook/x", []byte(tt.body), received)
		var re *alertmanager.RequestError
		if !errors.As(err, &re) || re.Status != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v over %s: %v, want a 422 containing %q", tt.mapping, tt.body, err, tt.want)
		}
	}
	m, _ := Compile(map[string]string{"title": "body.message"})
	if _, err := Parse(m, "webhook/x", []byte(`{"message": `), received); err == nil || errors.As(err, new(*FieldError)) {
		t.Errorf("malformed JSON: %v, want a 400 that is no mapping error", err)
	}
}

func TestMappingSetsEveryField(t *testing.T) {
	t.Parallel()
	m, err := Compile(map[string]string{
		"title": `"Build " + string(body.n) + " failed"`, "description": "body.d", "severity": `"critical"`,
		"status": `body.ok ? "resolved" : "firing"`, "id": "body.id", "starts_at": `timestamp(body.at)`, "url": "body.u",
		"labels": `{"team": body.team, "n": body.n, "gone": null}`, "annotations": `{"runbook": "r"}`,
		"subject.kind": `"Deployment"`, "subject.namespace": "body.ns", "subject.name": "body.name",
		"subject.container": `"app"`, "subject.node": `body.?node.orValue("")`,
	})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"n": 7, "d": "desc", "ok": false, "id": "b7", "at": "2026-12-04T09:00:00Z", "u": "https://ci/7", "team": "pay", "ns": "shop", "name": "cart"}`
	ev, err := Parse(m, "webhook/ci", []byte(body), received)
	if err != nil {
		t.Fatal(err)
	}
	want := event.Event{
		ID: event.NewID("webhook/ci", "b7", event.StatusFiring, time.Time{}), Kind: webhookevent.Kind, Source: "webhook/ci",
		Status: event.StatusFiring, Severity: event.SeverityCritical, Title: "Build 7 failed", Description: "desc",
		Labels: map[string]string{"team": "pay", "n": "7"}, Annotations: map[string]string{"runbook": "r"},
		Subject:  event.Subject{Kind: "Deployment", Namespace: "shop", Name: "cart", Container: "app"},
		StartsAt: time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC), Fingerprint: "b7", GeneratorURL: "https://ci/7", ReceivedAt: received,
	}
	g, _ := json.Marshal(ev)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("event:\n got %s\nwant %s", g, w)
	}
}

func TestSourceValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src  SourceConfig
		want string
	}{
		{SourceConfig{Name: "Argo CD", Preset: "argocd", Auth: AuthConfig{BearerToken: "t"}}, "name:"},
		{SourceConfig{Name: "a", Preset: "jenkins", Auth: AuthConfig{BearerToken: "t"}}, "preset:"},
		{SourceConfig{Name: "a", Auth: AuthConfig{BearerToken: "t"}}, "mapping: set a mapping or a preset"},
		{SourceConfig{Name: "a", Preset: "flux"}, "auth: set"},
		{SourceConfig{Name: "a", Preset: "flux", Auth: AuthConfig{Username: "u"}}, "auth.username and auth.password"},
		{SourceConfig{Name: "a", Preset: "flux", Auth: AuthConfig{BearerToken: "t", HMACHeader: "X"}}, "auth.hmac_header"},
		{SourceConfig{Name: "a", Preset: "flux", Mapping: map[string]string{"title": "body."}, Auth: AuthConfig{HMACSecret: "s"}}, "mapping.title"},
		{SourceConfig{Name: "a", Preset: "flux", Auth: AuthConfig{HMACSecret: "s"}}, ""},
	}
	for _, tt := range tests {
		err := ValidateSource(&tt.src)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: %v, want %q", tt.src, err, tt.want)
		}
	}
	if h := hmacCheck(&SourceConfig{Preset: "flux", Auth: AuthConfig{HMACSecret: "s"}}); h.Header != "X-Signature" {
		t.Errorf("flux's signature header: %q", h.Header)
	}
}

func TestHMACSignatures(t *testing.T) {
	t.Parallel()
	body := []byte(`{"a":1}`)
	m := httpauth.HMAC{Secret: "s3cret", Header: "X-Signature"}
	sig := m.Sign(body)
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"sha256=", sig, true},
		{"bare hex", strings.TrimPrefix(sig, "sha256="), true},
		{"flux sha1", "sha1=" + "00", false},
		{"wrong", "sha256=" + strings.Repeat("0", 64), false},
		{"missing", "", false},
		{"other algorithm", "md5=" + strings.TrimPrefix(sig, "sha256="), false},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.value != "" {
			h.Set("X-Signature", tt.value)
		}
		if got := m.Verify(h, body); got != tt.ok {
			t.Errorf("%s: Verify = %v, want %v", tt.name, got, tt.ok)
		}
	}
	if m.Verify(http.Header{"X-Signature": {sig}}, []byte(`{"a":2}`)) {
		t.Error("a signature of another body was accepted")
	}
}
