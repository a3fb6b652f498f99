package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestSecondAcquireFailsNamingTheHolder(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "findings.jsonl")
	if err := os.WriteFile(data, []byte("{\"finding\":{\"id\":\"a\"}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	first, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock is per open file description, so a second open in the same
	// process conflicts exactly as another process's would.
	_, err = Acquire(dir)
	var inUse *InUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("second Acquire: got %v, want *InUseError", err)
	}
	msg := err.Error()
	for _, want := range []string{"data dir " + dir + " is in use by medic pid " + strconv.Itoa(os.Getpid()), "(started ", "stop it or use another data dir"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	// The refused open touched nothing.
	if b, err := os.ReadFile(data); err != nil || string(b) != "{\"finding\":{\"id\":\"a\"}}\n" {
		t.Errorf("data file after the refused open: %q, %v", b, err)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	again, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	if err := again.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestInUseErrorWithoutHolderDetails(t *testing.T) {
	err := &InUseError{Dir: "/data"}
	if got := err.Error(); !strings.Contains(got, "in use by another medic (pid unknown)") {
		t.Errorf("message %q", got)
	}
}
