// Package e2e runs medic end to end against real components: embedded
// NATS JetStream, a real Alertmanager built from its Go module (test/realam),
// and the real file sink, through medic's HTTP API.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/app"
	"github.com/medichq/medic/internal/fixtures"
	_ "github.com/medichq/medic/internal/plugins"
	"github.com/medichq/medic/sinks/file/filetest"
	"github.com/medichq/medic/test/toolbin"
)

// medic is an in-process medic with a file sink.
type medic struct {
	app      *app.App
	url      string
	findings string
}

func testConfig(t *testing.T, dataDir string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Bus.StoreDir = filepath.Join(dataDir, "jetstream")
	cfg.Bus.Backoff = []time.Duration{50 * time.Millisecond}
	cfg.Playbooks.Dirs = nil
	cfg.Playbooks.ReloadInterval = 0
	cfg.Engine.Workers = 1 // keep stream order so "nothing after the marker" is meaningful
	specs, err := config.DefaultSinks(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sinks = specs[1:] // the file sink only; stdout would clutter test output
	return cfg
}

// startMedic runs medic in process with cfg; opts give it fake clients and
// the like.
func startMedic(t *testing.T, cfg config.Config, opts ...app.Option) *medic {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("invalid test config: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	a, err := app.New(ctx, cfg, logger, opts...)
	if err != nil {
		t.Fatalf("start medic: %v", err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start medic: %v", err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &medic{app: a, url: "http://" + a.Addr(), findings: filepath.Join(cfg.DataDir, "findings.jsonl")}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// post sends body to path and returns the status and decoded JSON answer.
func post(t *testing.T, url string, body []byte, header http.Header) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("answer is not JSON: %q", raw)
		}
	}
	return resp.StatusCode, out
}

// record is one line of the file sink's file.
type record = filetest.Record

// waitFindings polls the file sink until cond holds (bounded).
func waitFindings(t *testing.T, path string, timeout time.Duration, cond func([]record) bool) []record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		// Polled while medic writes: a last line without its newline is a
		// write in progress, not a torn record (exactlyOnce reads strictly
		// once the writes are done).
		recs := filetest.ReadSoFar(t, path)
		if cond(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("findings file never satisfied the condition within %s; it has %d lines", timeout, len(recs))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func countByID(recs []record) map[string]int {
	n := map[string]int{}
	for _, r := range recs {
		n[r.Finding.ID]++
	}
	return n
}

// samplePayload is a webhook body of the module's fixtures.
func samplePayload(t *testing.T, name string) []byte {
	t.Helper()
	return fixtures.Read(t, "payloads", "alertmanager", name)
}

func TestMain(m *testing.M) {
	code := m.Run()
	toolbin.RemoveMedic()
	os.Exit(code)
}
