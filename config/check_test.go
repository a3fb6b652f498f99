package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // Problem.String() without the file name
	}{
		{"empty file", "", nil},
		{"valid", "cluster_name: prod\nhttp: {addr: ':9090'}\n", nil},
		{"every problem at once", "log:\n  level: loud\n  formt: json\nengine:\n  workers: many\n  sink_workers: 0\n", []string{
			`:2:3: log.level: "loud" is not one of debug, info, warn, error`,
			`:3:3: log.formt: unknown key "formt" (did you mean "format"?)`,
			`:5:12: engine.workers: "many" is not a whole number`,
			`:6:3: engine.sink_workers: must be at least 1`,
		}},
		{"a tab, then the rest", "cluster_name: prod\nengine:\n\tworkerz: 2\n", []string{
			`:3:1: engine.workerz: tab character used for indentation; YAML needs spaces`,
			`:3:9: engine.workerz: unknown key "workerz" (did you mean "workers"?)`,
		}},
		{"every unknown key of a type that decodes itself", "playbook_repos:\n  - url: https://example.com/team.git\n    branh: main\n    auth: {tokn_env: T}\n", []string{
			`:3:5: playbook_repos[0].branh: unknown parameter "branh" (did you mean "branch"?)`,
			`:4:12: playbook_repos[0].auth.tokn_env: unknown parameter "tokn_env" (did you mean "token_env"?)`,
		}},
		{"not a mapping", "- a\n", []string{`:1:1: the configuration must be a mapping of settings (key: value)`}},
		{"both of a pair", "webhook: {username: u}\n", []string{`:1:11: webhook.username and webhook.password: set both or neither`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "medic.yaml")
			if err := os.WriteFile(path, []byte(tt.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			probs := Check(path, nil)
			if len(probs) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(probs), len(tt.want), probs)
			}
			for i, p := range probs {
				if got := p.String(); got != path+tt.want[i] {
					t.Errorf("problem %d:\n got %s\nwant %s", i, got, path+tt.want[i])
				}
			}
		})
	}
}

// TestCheckAgreesWithLoad: what Check passes, Load loads.
func TestCheckAgreesWithLoad(t *testing.T) {
	for _, doc := range []string{"", "log: {level: debug}\n", "engine: {workers: 0}\n", "nope: 1\n"} {
		path := filepath.Join(t.TempDir(), "medic.yaml")
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path, nil)
		if probs := Check(path, nil); (len(probs) == 0) != (err == nil) {
			t.Errorf("%q: Check %v, Load %v", doc, probs, err)
		}
	}
}
