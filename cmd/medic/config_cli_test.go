package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medichq/medic/config"
)

// TestConfigCheckGolden: every problem in one run, each at its line, with
// "did you mean" for unknown keys and a tab named as such.
func TestConfigCheckGolden(t *testing.T) {
	tests := []goldenCase{
		{"config-check-ok.txt", []string{"config", "check", repoCfg}, 0},
		{"config-check-ok.txt", []string{"config", "check", "-c", repoCfg}, 0},
		{"config-check-broken.txt", []string{"config", "check", "testdata/config/broken.yaml"}, 1},
		{"config-check-broken.json", []string{"config", "check", "--json", "testdata/config/broken.yaml"}, 1},
		{"config-check-tab.txt", []string{"config", "check", "testdata/config/tab.yaml"}, 1},
		{"config-check-invalid-yaml.txt", []string{"config", "check", "testdata/config/indent.yaml"}, 1},
		{"config-check-missing.txt", []string{"config", "check", "testdata/config/nonexistent.yaml"}, 1},
	}
	runGoldenCases(t, tests)
}

// TestConfigCheckDefaultFile: without FILE, the file medic serve would use.
func TestConfigCheckDefaultFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "medic.yaml")
	if err := os.WriteFile(path, []byte("log:\n  levl: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MEDIC_CONFIG", path)
	cmd := newRootCmd()
	var out strings.Builder
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"config", "check", "--json"})
	if err := cmd.Execute(); err == nil {
		t.Fatalf("no error for an unknown key:\n%s", out.String())
	}
	var probs []config.Problem
	if err := json.Unmarshal([]byte(out.String()), &probs); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, out.String())
	}
	want := config.Problem{File: path, Line: 2, Column: 3, Field: "log.levl", Message: `unknown key "levl" (did you mean "level"?)`, Suggestion: "level"}
	if len(probs) != 1 || probs[0] != want {
		t.Fatalf("got %+v\nwant %+v", probs, want)
	}
}

func TestPlaybooksValidateAllErrorsGolden(t *testing.T) {
	for _, name := range []string{"validate-many.txt", "validate-many.json"} {
		t.Run(name, func(t *testing.T) {
			args := []string{"playbooks", "validate", "--no-builtin", "-c", repoCfg, "testdata/broken-many"}
			if strings.HasSuffix(name, ".json") {
				args = append(args, "--json")
			}
			out, code := medic(t, args...)
			if code != 1 {
				t.Errorf("exit %d, want 1\n%s", code, out)
			}
			golden(t, name, out)
		})
	}
}
