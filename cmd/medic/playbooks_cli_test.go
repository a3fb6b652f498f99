package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medichq/medic/internal/plugins"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/playbooks"
)

// medic runs the CLI in-process and returns its output and exit code.
func medic(t *testing.T, args ...string) (string, int) {
	t.Helper()
	t.Setenv("MEDIC_CONFIG", "")
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	code := 0
	var exit exitError
	switch {
	case errors.As(err, &exit):
		code = exit.code
	case err != nil:
		out.WriteString("medic: " + err.Error() + "\n")
		code = 1
	}
	return out.String(), code
}

// goldenCase is one CLI run: its output must equal testdata/golden/<name>
// and it must exit with code.
type goldenCase struct {
	name string
	args []string
	code int
}

func runGoldenCases(t *testing.T, cases []goldenCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			out, code := medic(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, out)
			}
			golden(t, tt.name, out)
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	testkit.Golden(t, filepath.Join("testdata", "golden", name), []byte(got))
}

const (
	repoCfg = "testdata/repo/medic.yaml"
	repoPBs = "testdata/repo/playbooks"
	kubePBs = "testdata/kube/playbooks"
)

// The golden tests leave out the built-in playbooks (--no-builtin), which
// other parts of medic add to.
func TestPlaybooksValidateGolden(t *testing.T) {
	tests := []goldenCase{
		{"validate-ok.txt", []string{"playbooks", "validate", "--no-builtin", "-c", repoCfg, repoPBs}, 0},
		{"validate-ok.json", []string{"playbooks", "validate", "--no-builtin", "-c", repoCfg, "--json", repoPBs}, 0},
		{"validate-broken.txt", []string{"playbooks", "validate", "--no-builtin", "-c", repoCfg, "testdata/broken"}, 1},
		{"validate-broken.json", []string{"playbooks", "validate", "--no-builtin", "-c", repoCfg, "--json", "testdata/broken"}, 1},
	}
	runGoldenCases(t, tests)
}

func TestPlaybooksTestGolden(t *testing.T) {
	tests := []goldenCase{
		{"test-event.txt", []string{"playbooks", "test", "--no-builtin", "-c", repoCfg, repoPBs, "--event", "testdata/repo/events/two-alerts.json"}, 0},
		{"test-event.json", []string{"playbooks", "test", "--no-builtin", "-c", repoCfg, repoPBs, "--event", "testdata/repo/events/two-alerts.json", "--json"}, 0},
		{"test-kube-event.txt", []string{"playbooks", "test", "--no-builtin", "-c", repoCfg, repoPBs, "--event", "testdata/repo/events/oom-event.yaml"}, 0},
		{"test-kube-object.txt", []string{"playbooks", "test", "--no-builtin", "-c", repoCfg, kubePBs, "--event", "testdata/kube/pod-crashloop.yaml"}, 0},
		{"test-kube-object-quiet.txt", []string{"playbooks", "test", "--no-builtin", "-c", repoCfg, repoPBs, "--event", "testdata/kube/pod-crashloop.yaml"}, 0},
		{"test-kube-fixtures.txt", []string{"playbooks", "test", "--no-builtin", "-c", repoCfg, "-v", kubePBs}, 0},
		{"test-fixtures-pass.txt", []string{"playbooks", "test", "--no-builtin", "-c", repoCfg, repoPBs}, 0},
		{"test-fixtures-verbose.txt", []string{"playbooks", "test", "--no-builtin", "-c", repoCfg, "-v", repoPBs}, 0},
		{"test-fixtures-fail.txt", []string{"playbooks", "test", "--no-builtin", "-c", repoCfg, "testdata/failing"}, 1},
		{"test-fixtures-fail.json", []string{"playbooks", "test", "--no-builtin", "-c", repoCfg, "--json", "testdata/failing"}, 1},
		{"test-invalid-playbooks.txt", []string{"playbooks", "test", "--no-builtin", "-c", repoCfg, "testdata/broken"}, 1},
	}
	runGoldenCases(t, tests)
}

// TestPlaybooksTestNoFixtures: a folder without tests/ is a mistake in CI.
func TestPlaybooksTestNoFixtures(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("- triggers: [on_prometheus_alert]\n  actions: [default_enricher]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := medic(t, "playbooks", "test", "--no-builtin", dir)
	if code != 1 || !strings.Contains(out, "no fixtures") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestPlaybooksSchemaCommand(t *testing.T) {
	out, code := medic(t, "playbooks", "schema")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	builtin := plugins.Builtin()
	want, err := playbooks.SchemaJSON(builtin.Playbooks())
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Fatal("the command's schema differs from playbooks.SchemaJSON")
	}
	var schema map[string]any
	if err := json.Unmarshal([]byte(out), &schema); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	defs := schema["$defs"].(map[string]any)
	for _, d := range builtin.Triggers.Definitions() {
		if defs["trigger."+d.Name] == nil {
			t.Errorf("trigger %s missing from the schema", d.Name)
		}
	}
	for _, d := range builtin.Actions.Definitions() {
		if defs["action."+d.Name] == nil {
			t.Errorf("action %s missing from the schema", d.Name)
		}
	}
	file := filepath.Join(t.TempDir(), "schema.json")
	if out, code := medic(t, "playbooks", "schema", "--out", file); code != 0 {
		t.Fatalf("--out: %d %s", code, out)
	}
	if b, _ := os.ReadFile(file); string(b) != string(want) {
		t.Fatal("--out wrote something else")
	}
}
