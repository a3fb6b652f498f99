package toolbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func fake(mode string) Tool {
	return Tool{
		Name:    "fake",
		Version: "v1",
		Script:  "test/toolbin/testdata/build-fake.sh",
		Files:   []string{"a", "b"},
		Env:     []string{"FAKE_MODE=" + mode},
		Takes:   "no time",
	}
}

func runs(t *testing.T, tools string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tools, "runs"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func TestToolsDir(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, env, xdg, home, want string
	}{
		{name: "user cache from HOME", home: "/srv/u", want: "/srv/u/.cache/medic/tools"},
		{name: "XDG_CACHE_HOME wins over HOME", xdg: "/xdg", home: "/srv/u", want: "/xdg/medic/tools"},
		{name: "relative XDG_CACHE_HOME is ignored", xdg: "rel", home: "/srv/u", want: "/srv/u/.cache/medic/tools"},
		{name: "no usable home: in the clone", home: "/", want: filepath.Join(root, ".tools")},
		{name: "no home at all", want: filepath.Join(root, ".tools")},
		{name: "MEDIC_TOOLS_DIR relative to the root", env: "rel/tools", home: "/srv/u", want: filepath.Join(root, "rel", "tools")},
		{name: "MEDIC_TOOLS_DIR absolute", env: "/abs//tools/", home: "/srv/u", want: "/abs/tools"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(ToolsDirEnv, tc.env)
			t.Setenv("XDG_CACHE_HOME", tc.xdg)
			t.Setenv("HOME", tc.home)
			got, err := ToolsDir()
			if err != nil || got != tc.want {
				t.Errorf("ToolsDir() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// The shell scripts choose the same folder as ToolsDir.
func TestToolsDirAgreesWithTheScripts(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range [][]string{
		{"HOME=/srv/u"},
		{"HOME=/srv/u", "XDG_CACHE_HOME=/xdg"},
		{"HOME=/"},
		{"HOME=/srv/u", ToolsDirEnv + "=rel"},
	} {
		cmd := exec.Command("bash", filepath.Join(root, "test/tools/tools.sh"), "dir")
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: tools.sh dir: %v", env, err)
		}
		for _, kv := range []string{"HOME", "XDG_CACHE_HOME", ToolsDirEnv} {
			t.Setenv(kv, "")
		}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		want, err := ToolsDir()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("%v: tools.sh dir = %q, ToolsDir() = %q", env, got, want)
		}
	}
}

func TestDirBuildsOnceWithTheLockHeld(t *testing.T) {
	tools := t.TempDir()
	t.Setenv(ToolsDirEnv, tools)
	tool := fake("ok")
	if tool.Built() {
		t.Fatal("Built before any build")
	}
	for range 2 {
		dir, err := tool.Dir()
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(tools, "fake-v1"); dir != want {
			t.Fatalf("Dir() = %q, want %q", dir, want)
		}
	}
	if got := runs(t, tools); len(got) != 1 || got[0] != "1" {
		t.Errorf("script runs (their %s) = %q, want one with 1", LockHeldEnv, got)
	}
	if !tool.Built() {
		t.Error("not Built after Dir")
	}
	if _, err := os.Stat(filepath.Join(tools, ".fake-v1.lock")); err != nil {
		t.Errorf("lock file: %v", err)
	}
}

func TestDirRebuildsWhenAFileIsMissing(t *testing.T) {
	tools := t.TempDir()
	t.Setenv(ToolsDirEnv, tools)
	_, err := fake("partial").Dir()
	if err == nil || !strings.Contains(err.Error(), "lacks a/b") {
		t.Fatalf("Dir() error = %v, want one saying the files are lacking", err)
	}
	if _, err := fake("ok").Dir(); err != nil {
		t.Fatal(err)
	}
	if got := runs(t, tools); len(got) != 2 {
		t.Errorf("script ran %d times, want 2", len(got))
	}
}

func TestDirFailureKeepsTheTailOfStderr(t *testing.T) {
	t.Setenv(ToolsDirEnv, t.TempDir())
	// The script's 20 KB of stderr would drown the -v log.
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = devNull
	t.Cleanup(func() { os.Stderr = stderr; devNull.Close() })
	_, err = fake("fail").Dir()
	if err == nil {
		t.Fatal("Dir() succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "exit status 3") || !strings.HasSuffix(msg, "the end\n") {
		t.Errorf("error lacks the exit status or the end of stderr:\n%.300s", msg)
	}
	if len(msg) > 9<<10 {
		t.Errorf("error is %d bytes, want the 8 KiB tail only", len(msg))
	}
}

func TestTail(t *testing.T) {
	tail := &Tail{Max: 4}
	for _, s := range []string{"ab", "cdef", "g"} {
		if n, err := tail.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := tail.String(); got != "defg" {
		t.Errorf("String() = %q, want %q", got, "defg")
	}
}

func TestTreeFilesIsWhatTheTestCacheMustSee(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	root := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(name string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q")
	write(".gitignore")
	if err := os.WriteFile(filepath.Join(root, ".gitignore"), []byte("/bin/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	write("go.mod")
	write("deploy/helm/medic/values.yaml")
	git("add", ".")
	git("commit", "-q", "-m", "init")
	write("playbooks/new.yaml") // untracked, not ignored: tests read it like any other
	write("bin/test/medic")     // ignored build output

	files, err := treeFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	want := []string{".gitignore", "deploy/helm/medic/values.yaml", "go.mod", "playbooks/new.yaml"}
	if !slices.Equal(files, want) {
		t.Errorf("treeFiles = %q, want %q: git's own files and ignored output change on every run and would make every cached result stale; an untracked file must count", files, want)
	}
}
