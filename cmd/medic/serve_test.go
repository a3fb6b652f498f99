package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/medichq/medic/internal/testkit"
)

// A stop (SIGTERM, Ctrl-C) that arrives while medic is still starting is
// a stop that was asked for: serve returns nil, so the process exits 0, as
// it does for a stop after start-up. Here the stop comes before anything
// started, which interrupts start-up at its first step that honours it.
func TestServeStoppedDuringStartUpExitsCleanly(t *testing.T) {
	dir := t.TempDir()
	conf := fmt.Sprintf("data_dir: %q\nlog: {level: error}\nhttp: {addr: %q}\nplaybooks: {dirs: [], reload_interval: 0s}\n",
		dir, testkit.FreeAddr(t))
	path := filepath.Join(dir, "medic.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	stop()
	cmd := newRootCmd()
	cmd.SetArgs([]string{"serve", "-c", path})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("serve stopped during start-up returned %v; want nil (exit 0)", err)
	}
}
