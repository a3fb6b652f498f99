package main

import (
	"strings"
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	called := func(ids ...string) map[string][]Finding {
		m := map[string][]Finding{}
		for _, id := range ids {
			m[id] = []Finding{{OSV: id, FixedVersion: "v1.2.3", Trace: []Frame{{Module: "example.com/m", Version: "v1.0.0", Package: "example.com/m/p", Function: "F"}}}}
		}
		return m
	}
	exc := func(id, module, reviewBy string) Exception {
		return Exception{ID: id, Module: module, Reason: "why", ReviewBy: reviewBy}
	}
	today := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		called     map[string][]Finding
		exceptions []Exception
		want       []string // substrings, one per problem, in order
	}{
		{name: "nothing called, nothing accepted"},
		{name: "a called vulnerability fails", called: called("GO-1"), want: []string{"GO-1: medic calls example.com/m/p.F in example.com/m@v1.0.0 (fixed in v1.2.3)"}},
		{name: "an accepted one passes", called: called("GO-1"), exceptions: []Exception{exc("GO-1", "example.com/m", "2026-12-31")}},
		{name: "the review date itself still passes", called: called("GO-1"), exceptions: []Exception{exc("GO-1", "", "2026-12-04")}},
		{name: "past its review date fails", called: called("GO-1"), exceptions: []Exception{exc("GO-1", "", "2026-12-01")}, want: []string{"exception GO-1 was to be reviewed by 2026-12-01"}},
		{name: "a stale exception fails", exceptions: []Exception{exc("GO-9", "", "2027-01-01")}, want: []string{"exception GO-9 matches no finding any more"}},
		{name: "the wrong module fails", called: called("GO-1"), exceptions: []Exception{exc("GO-1", "example.com/other", "2027-01-01")}, want: []string{"exception GO-1 names module example.com/other, the finding is in example.com/m"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Judge(tc.called, tc.exceptions, today)
			if len(got) != len(tc.want) {
				t.Fatalf("Judge = %q, want %d problems like %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// Only findings whose trace reaches a function count: govulncheck also
// reports imported packages and required modules that are never called.
func TestCalledFindingsKeepsSymbolLevelOnly(t *testing.T) {
	stream := `{"config":{"scan_level":"symbol"}}
{"osv":{"id":"GO-1"}}
{"finding":{"osv":"GO-1","trace":[{"module":"m","version":"v1","package":"m/p"}]}}
{"finding":{"osv":"GO-2","trace":[{"module":"m","version":"v1"}]}}
{"finding":{"osv":"GO-3","fixed_version":"v2","trace":[{"module":"m","version":"v1","package":"m/p","function":"F","receiver":"*T"},{"module":"me","package":"me/main","function":"main"}]}}
`
	called, err := calledFindings([]byte(stream))
	if err != nil {
		t.Fatal(err)
	}
	if len(called) != 1 || len(called["GO-3"]) != 1 {
		t.Fatalf("called = %v, want only GO-3", called)
	}
	if got := path(called["GO-3"][0].Trace); got != "me/main.main → m/p.T.F" {
		t.Errorf("path = %q", got)
	}
	if _, err := calledFindings([]byte(`{"finding":`)); err == nil {
		t.Error("a truncated stream was read without an error")
	}
}

// The repository's own exceptions file is well formed.
func TestExceptionsFileLoads(t *testing.T) {
	exceptions, err := loadExceptions("exceptions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range exceptions {
		if e.Module == "" {
			t.Errorf("%s: name the module, so the entry cannot silently cover another", e.ID)
		}
	}
}
