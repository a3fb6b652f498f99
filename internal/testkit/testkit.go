// Package testkit is medic's one shared test kit: golden files (and the
// JSON they keep), free loopback ports, polling for a condition, checking a
// parameter struct's validation, and a small disk to fill.
// Tests import it instead of keeping their own copies, so a fix (a better
// diff, a port held while picking several) reaches every package at once.
//
// Golden files: Golden compares output with a file under the package's
// testdata; run the package's tests with -update to rewrite them, e.g.
//
//	go test ./sinks/slack -update
//	go test ./test/deploy -run Golden -update
//
// The -update flag is registered by this package, and only in test binaries
// (testing.Testing), so a program that links the port helpers (the tools
// under test/ link them into their command-line wrappers) gets no stray flag.
// A test package must not declare its own -update flag: the two would clash.
//
// Domain helpers stay with their domain: internal/gittest (git servers),
// rag/ragtest, agent/agenttest, test/toolbin (real tool binaries).
package testkit

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// update is -update in test binaries and always false elsewhere.
var update = func() *bool {
	if testing.Testing() {
		return flag.Bool("update", false, "rewrite the golden files (testkit.Golden) instead of comparing with them")
	}
	return new(bool)
}()

// Updating reports whether the test binary runs with -update, for tests that
// write golden output in a way Golden does not cover.
func Updating() bool { return *update }

// Golden fails t when got differs from the file at path; with -update it
// writes got there first (creating the directories). The failure names the
// first differing line and the command that rewrites the file.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("create the golden file's directory: %v", err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("write golden file: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (go test -update writes it): %v", err)
	}
	if !bytes.Equal(got, want) {
		msg := fmt.Sprintf("output differs from %s (go test -run '%s' -update rewrites it; review the diff)\n%s",
			path, t.Name(), FirstDiff(string(want), string(got)))
		if len(got) <= 8<<10 { // a short output reads best whole
			msg += "--- got ---\n" + string(got)
		}
		t.Error(msg)
	}
}

// JSON is v as indented JSON without HTML escaping (a golden file shows
// "<" and "&" as the receiver gets them), ending in a newline.
func JSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encode JSON: %v", err)
	}
	return buf.Bytes()
}

// ParamCase is one case of CheckParams: a change to the base parameters and
// a part of the error Validate must then return, naming the field; Want ""
// means the changed parameters must validate.
type ParamCase[P any] struct {
	Name string
	Mut  func(*P)
	Want string
}

// CheckParams applies each case to a fresh base() and fails t where
// validate answers other than the case wants. No error may contain one of
// secrets: a parameter error is logged and shown to whoever runs medic.
func CheckParams[P any](t testing.TB, base func() *P, validate func(*P) error, cases []ParamCase[P], secrets ...string) {
	t.Helper()
	for _, tc := range cases {
		p := base()
		tc.Mut(p)
		err := validate(p)
		switch {
		case tc.Want == "" && err != nil:
			t.Errorf("%s: %v, want the parameters accepted", tc.Name, err)
		case tc.Want != "" && (err == nil || !strings.Contains(err.Error(), tc.Want)):
			t.Errorf("%s: %v, want an error saying %q", tc.Name, err, tc.Want)
		}
		for _, s := range secrets {
			if err != nil && strings.Contains(err.Error(), s) {
				t.Errorf("%s: the error shows the secret %q: %v", tc.Name, s, err)
			}
		}
	}
}

// FirstDiff shows the first line where got departs from want, with up to
// three lines of context before it, for outputs too long to read whole.
func FirstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl || i >= len(w) || i >= len(g) {
			var b strings.Builder
			for j := max(0, i-3); j < i; j++ {
				fmt.Fprintf(&b, "  %4d  %s\n", j+1, w[j])
			}
			fmt.Fprintf(&b, "- %4d  %s\n+ %4d  %s\n", i+1, wl, i+1, gl)
			return b.String()
		}
	}
	return "(no difference)"
}

// FreePorts returns n loopback TCP ports the kernel just handed out. All n
// are held open together so none is returned twice; another process may
// still take one before the caller binds it, which the callers that start
// real servers retry around.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free loopback port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// FreePort returns one free loopback TCP port, failing t when there is none.
func FreePort(t testing.TB) int {
	t.Helper()
	ports, err := FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}

// FreeAddr is FreePort as a host:port address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(FreePort(t)))
}

// Eventually polls cond until it holds and fails t when timeout passes
// first. The timeout only bounds a failure: tests assert behaviour, not
// timing, so give it room for a loaded machine.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
