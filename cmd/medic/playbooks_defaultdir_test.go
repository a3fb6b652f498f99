package main

import (
	"strings"
	"testing"
)

// TestPlaybooksListWithoutThePlaybooksFolder: like medic serve, the CLI
// treats the default ./playbooks folder as optional, while a folder named
// on the command line must exist.
func TestPlaybooksListWithoutThePlaybooksFolder(t *testing.T) {
	t.Chdir(t.TempDir())
	out, _, err := runCLI(t, "playbooks", "list")
	if err != nil {
		t.Fatalf("list without ./playbooks: %v", err)
	}
	if !strings.Contains(out, "builtin-alert-enricher") {
		t.Errorf("built-in playbooks missing from:\n%s", out)
	}
	if _, _, err := runCLI(t, "playbooks", "validate", "no-such-folder"); err == nil || !strings.Contains(err.Error(), "no-such-folder") {
		t.Errorf("a named folder that does not exist: err %v", err)
	}
}
