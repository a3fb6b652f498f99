package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
)

// TestDLQAPIRefusals: the dead-letter API answers only with the intake's
// credentials, takes POSTs only as application/json, asks for all=true
// before acting on every dead letter, and names what is wrong with a
// request; none of the refused requests touches the dead letter.
func TestDLQAPIRefusals(t *testing.T) {
	t.Parallel()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer down.Close()
	cfg := webhookConfig(t, t.TempDir(), down.URL)
	cfg.Webhook.BearerToken = "dlq-secret"
	cfg.Bus.MaxDeliver = 1
	a := startLoggedApp(t, cfg)
	base := "http://" + a.Addr()
	ctx := context.Background()

	ev := event.Event{ID: "e1", Kind: event.KindPrometheusAlert, Status: event.StatusFiring, Title: "T",
		StartsAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	if err := a.bus.PublishFinding(ctx, "hook", event.NewFinding(ev, ev.StartsAt)); err != nil {
		t.Fatal(err)
	}
	dl, err := a.bus.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "the finding is dead-lettered", func() bool {
		l, err := dl.List(ctx, bus.DeadLetterFilter{}, 0)
		return err == nil && len(l) == 1
	})

	const good, jsonCT, text = "Bearer dlq-secret", "application/json", "text/plain"
	tests := []struct {
		name, method, path, auth, contentType string
		want                                  int
		wantErr                               string
	}{
		{"list without a token", "GET", "/api/dlq", "", "", 401, "unauthorized"},
		{"show with a wrong token", "GET", "/api/dlq/1", "Bearer nope", "", 401, "unauthorized"},
		{"replay without a token", "POST", "/api/dlq/1/replay", "", jsonCT, 401, "unauthorized"},
		{"replay by filter without a token", "POST", "/api/dlq/replay?all=true", "", jsonCT, 401, "unauthorized"},
		{"delete without a token", "DELETE", "/api/dlq/1", "", "", 401, "unauthorized"},
		{"purge without a token", "DELETE", "/api/dlq?all=true", "", "", 401, "unauthorized"},
		{"replay as a form", "POST", "/api/dlq/1/replay", good, "application/x-www-form-urlencoded", 415, "not application/json"},
		{"replay as text", "POST", "/api/dlq/replay?all=true", good, text, 415, "not application/json"},
		{"replay every one without all=true", "POST", "/api/dlq/replay", good, jsonCT, 400, "replay every dead letter?"},
		{"purge every one without all=true", "DELETE", "/api/dlq", good, "", 400, "purge every dead letter?"},
		{"purge with all=false", "DELETE", "/api/dlq?all=false", good, "", 400, "purge every dead letter?"},
		{"not a sequence", "GET", "/api/dlq/abc", good, "", 400, `"abc" is not a dead-letter sequence`},
		{"sequence 0", "DELETE", "/api/dlq/0", good, "", 400, `"0" is not a dead-letter sequence`},
		{"no such dead letter", "GET", "/api/dlq/999", good, "", 404, "no such dead letter"},
		{"replay of no such dead letter", "POST", "/api/dlq/999/replay", good, jsonCT, 404, "no such dead letter"},
		{"bad since", "GET", "/api/dlq?since=yesterday", good, "", 400, "since:"},
		{"negative since", "GET", "/api/dlq?since=-2h", good, "", 400, "since:"},
		{"sink and subject", "GET", "/api/dlq?sink=a&subject=medic.findings.a", good, "", 400, "sink and subject"},
		{"bad subject", "DELETE", "/api/dlq?subject=medic..x", good, "", 400, "subject"},
		{"bad limit", "GET", "/api/dlq?limit=-1", good, "", 400, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := dlqRequest(t, tt.method, base+tt.path, tt.auth, tt.contentType)
			if status != tt.want {
				t.Fatalf("%s %s: %d %s, want %d", tt.method, tt.path, status, body, tt.want)
			}
			var answer struct{ Error string }
			if err := json.Unmarshal([]byte(body), &answer); err != nil || !strings.Contains(answer.Error, tt.wantErr) {
				t.Errorf("answer %s, want an error containing %q", body, tt.wantErr)
			}
		})
	}

	// Nothing above touched it; with the token it is listed, then purged.
	if l, err := dl.List(ctx, bus.DeadLetterFilter{}, 0); err != nil || len(l) != 1 {
		t.Fatalf("after the refused requests: %v, %v", l, err)
	}
	if status, body := dlqRequest(t, "GET", base+"/api/dlq?sink=hook&since=1h", good, ""); status != 200 || !strings.Contains(body, `"consumer":"sink-hook"`) {
		t.Fatalf("list: %d %s", status, body)
	}
	if status, body := dlqRequest(t, "DELETE", base+"/api/dlq?all=true", good, ""); status != 200 || strings.TrimSpace(body) != `{"purged":1}` {
		t.Fatalf("purge all: %d %s", status, body)
	}
}

func dlqRequest(t *testing.T, method, url, auth, contentType string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}
