package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medichq/medic/internal/fixtures"
	"github.com/medichq/medic/playbooks/robusta"
)

var robustaTestdata = filepath.Join("..", "..", "playbooks", "robusta", "testdata")

// TestImportRobustaSharedValues converts Robusta's own values file with
// medic's real registries, and checks that what it writes passes
// `medic playbooks validate`. (Golden files of the conversion, with a fixed
// set of triggers and actions, are in playbooks/robusta.)
func TestImportRobustaSharedValues(t *testing.T) {
	values := fixtures.Path("robusta", "values.yaml")
	if _, err := os.Stat(values); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	for _, tt := range []struct {
		extra    []string
		wantCode int
	}{
		{nil, 0}, // the chart's defaults have no custom playbooks or sinks
		{[]string{"--builtin"}, exitImportLossy},
	} {
		dir := t.TempDir()
		args := append([]string{"playbooks", "import-robusta", values, "--out", dir}, tt.extra...)
		out, code := medic(t, args...)
		if code != tt.wantCode {
			t.Fatalf("%v: exit %d, want %d\n%s", tt.extra, code, tt.wantCode, out)
		}
		for _, want := range []string{"not converted", "created " + filepath.Join(dir, "playbooks.yaml")} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: report lacks %q:\n%s", tt.extra, want, out)
			}
		}
		if tt.extra != nil && !strings.Contains(out, "priorityBuiltinPlaybooks[4] (TargetDownSilencer): playbook: action `target_down_dns_silencer` is not converted") {
			t.Errorf("report does not list the silencer:\n%s", out)
		}
		vout, vcode := medic(t, "playbooks", "validate", "-c", filepath.Join(dir, "sinks.yaml"), filepath.Join(dir, "playbooks.yaml"))
		if vcode != 0 {
			t.Fatalf("%v: the converted playbooks do not validate:\n%s", tt.extra, vout)
		}
	}
}

func TestImportRobustaCustomValues(t *testing.T) {
	dir := t.TempDir()
	out, code := medic(t, "playbooks", "import-robusta", filepath.Join(robustaTestdata, "custom-values.yaml"), "--out", dir)
	if code != exitImportLossy {
		t.Fatalf("exit %d, want %d (something was not converted)\n%s", code, exitImportLossy, out)
	}
	if !strings.Contains(out, "sinksConfig[3] (robusta_ui_sink): sink `robusta_sink`: medic has no equivalent") {
		t.Errorf("report:\n%s", out)
	}
	// bash-on-nodes names node_bash_enricher: as generated, medic stays
	// read-only and it does not load; with the suggested block
	// uncommented (and an approver named) it does.
	vout, vcode := medic(t, "playbooks", "validate", "-c", filepath.Join(dir, "sinks.yaml"), filepath.Join(dir, "playbooks.yaml"))
	if vcode == 0 || !strings.Contains(vout, "remediation is disabled") {
		t.Errorf("the playbook naming node_bash_enricher validates without remediation enabled (exit %d):\n%s", vcode, vout)
	}
	optIn := filepath.Join(dir, "opt-in.yaml")
	if err := os.WriteFile(optIn, uncommentRemediation(t, filepath.Join(dir, "sinks.yaml")), 0o600); err != nil {
		t.Fatal(err)
	}
	if vout, vcode := medic(t, "playbooks", "validate", "-c", optIn, filepath.Join(dir, "playbooks.yaml")); vcode != 0 {
		t.Fatalf("the converted playbooks do not validate with the suggested remediation block:\n%s", vout)
	}
	if out, code := medic(t, "playbooks", "import-robusta", "nonexistent.yaml", "--out", dir); code != 1 {
		t.Errorf("a missing file: exit %d, want 1: %s", code, out)
	}
	if out, code := medic(t, "playbooks", "import-robusta", "nonexistent.yaml", "--out", dir, "--report", "json"); code != 1 || !strings.Contains(out, `"error"`) {
		t.Errorf("a missing file with --report json: exit %d, want 1 and a JSON error: %s", code, out)
	}
	if out, code := medic(t, "playbooks", "import-robusta", filepath.Join(robustaTestdata, "custom-values.yaml"), "--out", dir, "--report", "xml"); code != 1 || !strings.Contains(out, "--report") {
		t.Errorf("--report xml: exit %d: %s", code, out)
	}
}

// TestImportRobustaLossless: everything converted, exit status 0.
func TestImportRobustaLossless(t *testing.T) {
	dir := t.TempDir()
	out, code := medic(t, "playbooks", "import-robusta", filepath.Join(robustaTestdata, "lossless-values.yaml"), "--out", dir)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, out)
	}
	if strings.Contains(out, "not converted (") || strings.Contains(out, "with loss (") {
		t.Errorf("a lossless import lists losses:\n%s", out)
	}
	if !strings.Contains(out, "slack.botToken") {
		t.Errorf("the report does not say where the Slack token goes:\n%s", out)
	}
}

// TestImportRobustaIdempotent: a re-run writes the same bytes and says
// unchanged; a change of the values rewrites only the files it changes.
func TestImportRobustaIdempotent(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(robustaTestdata, "custom-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	values := filepath.Join(t.TempDir(), "values.yaml")
	write := func(data []byte) {
		t.Helper()
		if err := os.WriteFile(values, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	read := func() map[string]string {
		t.Helper()
		files := map[string]string{}
		for _, n := range []string{"playbooks.yaml", "sinks.yaml", "values.yaml"} {
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				t.Fatal(err)
			}
			files[n] = string(b)
		}
		return files
	}
	statuses := func() map[string]string {
		t.Helper()
		out, code := medic(t, "playbooks", "import-robusta", values, "--out", dir, "--report", "json")
		if code != exitImportLossy {
			t.Fatalf("exit %d\n%s", code, out)
		}
		var rep robusta.JSONReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		st := map[string]string{}
		for _, f := range rep.Files {
			st[filepath.Base(f.Path)] = f.Status
		}
		return st
	}
	write(src)
	if st := statuses(); st["playbooks.yaml"] != "created" || st["sinks.yaml"] != "created" || st["values.yaml"] != "created" {
		t.Fatalf("first run: %v", st)
	}
	first := read()
	if st := statuses(); st["playbooks.yaml"] != "unchanged" || st["sinks.yaml"] != "unchanged" || st["values.yaml"] != "unchanged" {
		t.Errorf("re-run: %v, want every file unchanged", st)
	}
	if again := read(); again["playbooks.yaml"] != first["playbooks.yaml"] || again["sinks.yaml"] != first["sinks.yaml"] || again["values.yaml"] != first["values.yaml"] {
		t.Error("re-run changed the files")
	}
	// A sink's channel changes: the sinks and Helm values change, the
	// playbooks do not.
	write([]byte(strings.Replace(string(src), "slack_channel: alerts", "slack_channel: alerts-eu", 1)))
	if st := statuses(); st["playbooks.yaml"] != "unchanged" || st["sinks.yaml"] != "updated" || st["values.yaml"] != "updated" {
		t.Errorf("after a change of a sink: %v", st)
	}
	if got := read()["sinks.yaml"]; strings.Count(got, "name: main_slack_sink") != 1 || !strings.Contains(got, "channel: alerts-eu") {
		t.Errorf("sinks.yaml after the change:\n%s", got)
	}
}

// TestImportRobustaJSONReport checks the documented JSON schema: every
// item counted once in the summary, the files, lossless false.
func TestImportRobustaJSONReport(t *testing.T) {
	dir := t.TempDir()
	out, code := medic(t, "playbooks", "import-robusta", filepath.Join(robustaTestdata, "custom-values.yaml"), "--out", dir, "--report", "json")
	if code != exitImportLossy {
		t.Fatalf("exit %d\n%s", code, out)
	}
	var rep robusta.JSONReport
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Schema != robusta.ReportSchema || rep.Lossless || len(rep.Files) != 3 {
		t.Errorf("schema %q lossless %v files %v", rep.Schema, rep.Lossless, rep.Files)
	}
	byKind := map[string]int{}
	for _, it := range rep.Items {
		byKind[it.Kind]++
		if it.Outcome != robusta.Converted && len(it.Reasons) == 0 {
			t.Errorf("%s without a reason: %+v", it.Outcome, it)
		}
	}
	for _, r := range rep.Summary {
		if r.Total() != byKind[r.Kind] {
			t.Errorf("summary %s: %d items, %d listed", r.Kind, r.Total(), byKind[r.Kind])
		}
	}
	if byKind[robusta.KindPlaybook] != 7 || byKind[robusta.KindSink] != 4 {
		t.Errorf("items by kind: %v, want the 7 playbooks and 4 sinks of the file", byKind)
	}
}

// uncommentRemediation is what the operator does to opt in: uncomment the
// remediation block the import suggests and name an approver.
func uncommentRemediation(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for line := range strings.SplitSeq(string(data), "\n") {
		in = line == "#   remediation:" || (in && strings.HasPrefix(line, "#     "))
		if in {
			line = strings.TrimPrefix(line, "#   ")
			if strings.HasPrefix(line, "  approvers:") {
				line = "  approvers: [U0123ABCD]"
			}
		}
		out = append(out, line)
	}
	if !strings.Contains(strings.Join(out, "\n"), "\nremediation:\n  enabled: true\n") {
		t.Fatalf("%s suggests no remediation block:\n%s", path, data)
	}
	return []byte(strings.Join(out, "\n"))
}
