package file_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks/file"
)

// TestDiskFullMidWriteLeavesNoTornLine: the disk fills while a line is
// being written (the write takes what fits, then fails with ENOSPC). The
// sink cuts the part written off, so the file still ends with a whole line;
// once there is space again, the retried finding is written whole, once,
// without reopening the sink.
func TestDiskFullMidWriteLeavesNoTornLine(t *testing.T) {
	t.Parallel()
	dir := testkit.SmallDisk(t, "256k")
	path := filepath.Join(dir, "findings.jsonl")
	s := open(t, params(path))
	send(t, s, "first")

	filler := filepath.Join(dir, "filler")
	testkit.FillDisk(t, filler, 8<<10)
	big := finding("big")
	big.Add(event.Enrichment{Title: "Logs", Blocks: []event.Block{event.LogTextBlock("shop/cart", strings.Repeat("log line\n", 8<<10), false)}})
	err := s.Send(context.Background(), big)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Send on a full disk: got %v, want ENOSPC", err)
	}
	if got := ids(readLines(t, path)); strings.Join(got, ",") != "first" {
		t.Fatalf("after the failed write the file holds %v, want only [first] and no partial line", got)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// medic retries the finding (it was not acknowledged).
	if err := s.Send(context.Background(), big); err != nil {
		t.Fatalf("Send once there is space: %v", err)
	}
	send(t, s, "after")
	if got := ids(readLines(t, path)); strings.Join(got, ",") != "first,big,after" {
		t.Fatalf("file holds %v, want [first big after]", got)
	}
	// A restart finds nothing to repair and writes nothing twice.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := file.Open("archive", params(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	send(t, s2, "big", "after")
	if got := ids(readLines(t, path)); strings.Join(got, ",") != "first,big,after" {
		t.Fatalf("after a restart the file holds %v, want [first big after]", got)
	}
}
