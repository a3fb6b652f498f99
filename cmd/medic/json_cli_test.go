package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
)

// closedPort returns an address nothing listens on: one the kernel just
// gave out and that was closed again.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestTriggerNotRunningGolden: a newcomer who runs trigger before serve is
// told what to do, not "dial tcp …: connection refused".
func TestTriggerNotRunningGolden(t *testing.T) {
	addr := closedPort(t)
	for _, name := range []string{"trigger-not-running.txt", "trigger-not-running.json"} {
		t.Run(name, func(t *testing.T) {
			args := []string{"trigger", "prometheus_alert", "alert_name=KubePodCrashLooping", "--server", "http://" + addr}
			if strings.HasSuffix(name, ".json") {
				args = append(args, "--json")
			}
			out, code := medic(t, args...)
			if code == 0 {
				t.Fatalf("exit 0 against a closed port:\n%s", out)
			}
			golden(t, name, strings.ReplaceAll(out, addr, "127.0.0.1:PORT"))
		})
	}
}

// TestJSONEverywhere: every command with --json prints one JSON document
// on stdout, on success and on failure alike.
func TestJSONEverywhere(t *testing.T) {
	kbCfg := writeKBConfig(t, "")
	tests := []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{"version", []string{"version", "--json"}, false},
		{"playbooks list", []string{"playbooks", "list", "--no-builtin", "-c", repoCfg, "--json", repoPBs}, false},
		{"playbooks list broken", []string{"playbooks", "list", "--no-builtin", "-c", repoCfg, "--json", "testdata/broken"}, true},
		{"playbooks validate, bad config", []string{"playbooks", "validate", "-c", "testdata/config/broken.yaml", "--json", repoPBs}, true},
		{"config check", []string{"config", "check", "--json", repoCfg}, false},
		{"ask, AI not configured", []string{"ask", "why?", "--json", "-c", kbCfg}, true},
		{"kb status", []string{"kb", "status", "--json", "-c", kbCfg}, false},
		{"playbooks import-robusta", []string{"playbooks", "import-robusta", "../../playbooks/robusta/testdata/lossless-values.yaml", "--out", t.TempDir(), "--json"}, false},
		{"trigger, nothing listening", []string{"trigger", "prometheus_alert", "--json", "--server", "http://" + closedPort(t)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runCLI(t, tt.args...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v\n%s\n%s", err, tt.wantErr, stdout, stderr)
			}
			var v any
			if jerr := json.Unmarshal([]byte(stdout), &v); jerr != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", jerr, stdout)
			}
			if m, ok := v.(map[string]any); ok && tt.wantErr && m["error"] == nil && m["valid"] == nil {
				t.Errorf("a failure without an error field: %s", stdout)
			}
		})
	}
}
