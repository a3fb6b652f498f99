package app

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/internal/testkit"
)

const (
	ingestedLine = "ingested the default runbooks"
	releasedLine = "released the memory only start-up used"
)

func startLogged(t *testing.T, release bool) (*App, *testkit.SyncBuffer) {
	t.Helper()
	cfg := aiConfig(t, nil)
	cfg.Memory.ReleaseAfterStart = release
	logs := &testkit.SyncBuffer{}
	a, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return a, logs
}

func shutdown(t *testing.T, a *App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// The release waits for the knowledge-base ingest, which runs after Start
// returned, so the memory it used is given back too; medic then goes on
// turning alerts into findings.
func TestStartupMemoryIsReleasedAfterTheIngest(t *testing.T) {
	a, logs := startLogged(t, true)
	defer shutdown(t, a)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs.String(), releasedLine) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q line within 60s; log:\n%s", releasedLine, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := logs.String()
	ingested, released := strings.Index(out, ingestedLine), strings.Index(out, releasedLine)
	if ingested < 0 || ingested > released {
		t.Fatalf("memory released before the knowledge base was ingested; log:\n%s", out)
	}
	if strings.Contains(out, "could not release") {
		t.Errorf("release failed; log:\n%s", out)
	}
	postCrashLoop(t, a)
	if f := waitFinding(t, a.cfg); f.ID == "" {
		t.Fatal("finding without an ID after the release")
	}
}

func TestStartupMemoryReleaseCanBeTurnedOff(t *testing.T) {
	a, logs := startLogged(t, false)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs.String(), ingestedLine) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q line within 60s; log:\n%s", ingestedLine, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Shutdown waits for every goroutine Start began, a release among them.
	shutdown(t, a)
	if strings.Contains(logs.String(), releasedLine) {
		t.Fatalf("memory released with memory.release_after_start off; log:\n%s", logs)
	}
}

// Start-up work still running holds the release back; the release follows
// as soon as it ends.
func TestStartupMemoryReleaseWaitsForStartupWork(t *testing.T) {
	logs := &testkit.SyncBuffer{}
	a := &App{logger: slog.New(slog.NewTextHandler(logs, nil))}
	a.startup.Add(1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.releaseStartupMemory(context.Background())
	}()
	time.Sleep(200 * time.Millisecond)
	if strings.Contains(logs.String(), releasedLine) {
		t.Fatal("memory released while start-up work was still running")
	}
	a.startup.Done()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("no release 30s after start-up work ended")
	}
	if !strings.Contains(logs.String(), releasedLine) {
		t.Fatalf("no %q line; log:\n%s", releasedLine, logs)
	}
}
