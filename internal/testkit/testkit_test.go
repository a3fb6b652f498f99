package testkit

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that records failures instead of failing, so
// the helpers' failure paths can be asserted.
type recorder struct {
	testing.TB
	failed atomic.Bool
	msg    atomic.Value
}

func (r *recorder) Helper()      {}
func (r *recorder) Name() string { return "TestX" }
func (r *recorder) Errorf(format string, args ...any) {
	r.failed.Store(true)
	r.msg.Store(format)
}
func (r *recorder) Error(args ...any) { r.failed.Store(true); r.msg.Store(args[0]) }

// Fatalf ends the calling goroutine like the real one; callers run the
// helper in their own goroutine.
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed.Store(true)
	r.msg.Store(format)
	runtime.Goexit()
}

func run(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func TestGolden(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "out.golden")
	if err := os.WriteFile(path, []byte("a\nb\nc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		path     string
		got      string
		wantFail bool
	}{
		{"same", path, "a\nb\nc\n", false},
		{"differs", path, "a\nB\nc\n", true},
		{"missing trailing newline", path, "a\nb\nc", true},
		{"no golden file", filepath.Join(dir, "absent.golden"), "x", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &recorder{TB: t}
			run(func() { Golden(r, tt.path, []byte(tt.got)) })
			if r.failed.Load() != tt.wantFail {
				t.Errorf("failed = %v, want %v", r.failed.Load(), tt.wantFail)
			}
		})
	}
}

func TestFirstDiff(t *testing.T) {
	t.Parallel()
	tests := []struct{ want, got, contains string }{
		{"a\nb\n", "a\nb\n", "(no difference)"},
		{"a\nb\nc", "a\nX\nc", "-    2  b\n+    2  X"},
		{"a\n", "a\nmore", "+    2  more"},
	}
	for _, tt := range tests {
		if d := FirstDiff(tt.want, tt.got); !strings.Contains(d, tt.contains) {
			t.Errorf("FirstDiff(%q, %q) = %q, want it to contain %q", tt.want, tt.got, d, tt.contains)
		}
	}
}

func TestFreePortsAreDistinctAndBindable(t *testing.T) {
	t.Parallel()
	ports, err := FreePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: %d repeated or invalid", ports, p)
		}
		seen[p] = true
	}
	if addr := FreeAddr(t); !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("FreeAddr = %q, want a loopback address", addr)
	}
}

func TestEventually(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	Eventually(t, 10*time.Second, "the third poll", func() bool { return n.Add(1) >= 3 })
	if n.Load() < 3 {
		t.Errorf("returned after %d polls, want 3", n.Load())
	}

	r := &recorder{TB: t}
	run(func() { Eventually(r, 50*time.Millisecond, "never", func() bool { return false }) })
	if !r.failed.Load() {
		t.Error("Eventually did not fail on a condition that never holds")
	}
	if msg, _ := r.msg.Load().(string); !strings.Contains(msg, "waiting for") {
		t.Errorf("failure message %q does not say what it waited for", msg)
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	got := string(JSON(t, map[string]any{"a": "<b>&", "n": []int{1}}))
	want := "{\n  \"a\": \"<b>&\",\n  \"n\": [\n    1\n  ]\n}\n"
	if got != want {
		t.Errorf("JSON = %q, want %q", got, want)
	}
}

func TestCheckParams(t *testing.T) {
	t.Parallel()
	type params struct{ URL, Token string }
	base := func() *params { return &params{} }
	validate := func(p *params) error {
		switch {
		case p.URL == "":
			return errors.New("url: required")
		case p.Token == "s3cret":
			return errors.New("token s3cret: too short")
		}
		return nil
	}
	tests := []struct {
		name     string
		c        ParamCase[params]
		wantFail bool
	}{
		{"error as wanted", ParamCase[params]{"no url", func(*params) {}, "url: required"}, false},
		{"accepted as wanted", ParamCase[params]{"ok", func(p *params) { p.URL = "https://x" }, ""}, false},
		{"other error", ParamCase[params]{"no url", func(*params) {}, "token"}, true},
		{"accepted, error wanted", ParamCase[params]{"ok", func(p *params) { p.URL = "https://x" }, "url"}, true},
		{"refused, none wanted", ParamCase[params]{"no url", func(*params) {}, ""}, true},
		{"secret in the error", ParamCase[params]{"token", func(p *params) { p.URL, p.Token = "https://x", "s3cret" }, "too short"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &recorder{TB: t}
			run(func() { CheckParams(r, base, validate, []ParamCase[params]{tt.c}, "s3cret") })
			if r.failed.Load() != tt.wantFail {
				t.Errorf("failed = %v, want %v (%v)", r.failed.Load(), tt.wantFail, r.msg.Load())
			}
		})
	}
}
