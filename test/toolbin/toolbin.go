// Package toolbin finds the third-party tools medic's tests run and builds
// them when they are missing.
//
// Each tool is built from pinned sources by a script in test/tools into the
// per-user tools cache, <name>-<version>/ (ToolsDir says which folder;
// $MEDIC_TOOLS_DIR overrides it) and reused afterwards. Tool.Dir runs the script itself
// when a binary is absent, so `go test` works on a clean checkout; nothing is
// ever installed by hand.
package toolbin

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

const (
	// ToolsDirEnv overrides where built tools live. A relative value is taken
	// relative to the repository root, as the build scripts do, so the tests
	// and `make` agree whatever the working directory.
	ToolsDirEnv = "MEDIC_TOOLS_DIR"
	// LockHeldEnv tells a build script that its caller already holds the
	// tool's lock file: flock would otherwise wait on our own lock forever.
	LockHeldEnv = "MEDIC_TOOLS_LOCK_HELD"

	modulePath = "github.com/medichq/medic"
)

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// RepoRoot finds the medic repository root: the nearest directory at or above
// the working directory whose go.mod declares module github.com/medichq/medic,
// falling back to the location of this source file (for `go run` from
// elsewhere). In a test it also lets Go's test cache see the whole working
// tree (trackRepository).
func RepoRoot() (string, error) {
	rootOnce.Do(func() {
		rootDir, rootErr = findRoot()
		if rootErr == nil {
			trackRepository(rootDir)
		}
	})
	return rootDir, rootErr
}

func findRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, start := range starts {
		for dir := start; ; {
			if isMedicModule(filepath.Join(dir, "go.mod")) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("toolbin: no go.mod for module %s above %v", modulePath, starts)
}

func isMedicModule(goMod string) bool {
	f, err := os.Open(goMod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == modulePath
		}
	}
	return false
}

// ToolsDir returns the absolute tools directory: $MEDIC_TOOLS_DIR when set (a
// relative one is relative to the repository root), else a per-user cache
// chosen at run time ($XDG_CACHE_HOME/medic/tools or $HOME/.cache/medic/tools),
// so that every clone on a machine reuses the same builds, else .tools at the
// repository root when there is no usable home. test/tools/lib.sh
// (default_tools_dir) makes the same choice; keep them in step.
func ToolsDir() (string, error) {
	d := os.Getenv(ToolsDirEnv)
	if d == "" {
		d = userToolsCache()
	}
	if d != "" && filepath.IsAbs(d) {
		return filepath.Clean(d), nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("relative %s=%q needs the repository root: %w", ToolsDirEnv, d, err)
	}
	if d == "" {
		d = ".tools"
	}
	return filepath.Join(root, d), nil
}

// userToolsCache is the per-user tools cache, or "" without a usable home.
// Only absolute XDG_CACHE_HOME and HOME count, as in the shell version.
func userToolsCache() string {
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "medic", "tools")
	}
	if h := os.Getenv("HOME"); h != "" && filepath.IsAbs(h) && filepath.Clean(h) != "/" {
		return filepath.Join(h, ".cache", "medic", "tools")
	}
	return ""
}

// Tool is one third-party tool built by a script into <tools>/<Name>-<Version>/.
type Tool struct {
	// Name and Version name the tool's directory and its lock file; they must
	// match what Script writes.
	Name    string
	Version string
	// Script builds the tool; it is relative to the repository root.
	Script string
	// Files are the executables the script leaves in the tool's directory.
	// A tool counts as built only once all of them are there.
	Files []string
	// Env is added to the script's environment, for a version pinned in Go.
	Env []string
	// Takes is how long a cold build takes, for the progress line: without it
	// a test that seems to hang for minutes gets killed by hand.
	Takes string
}

// Path returns the tool's directory, whether or not it is built yet.
func (t Tool) Path() (string, error) {
	_, _ = RepoRoot() // for the test cache: the tool may read any file of the tree
	tools, err := ToolsDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(tools, t.Name+"-"+t.Version), nil
}

// Built reports whether every file of the tool is there already.
func (t Tool) Built() bool {
	dir, err := t.Path()
	return err == nil && t.complete(dir)
}

// Dir returns the tool's directory, running its build script first when any
// of its files is missing.
func (t Tool) Dir() (string, error) {
	_, _ = RepoRoot() // for the test cache: the tool may read any file of the tree
	tools, err := ToolsDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(tools, t.Name+"-"+t.Version)
	if t.complete(dir) {
		return dir, nil
	}

	// Parallel test packages are separate processes: one builds, the others
	// wait on the lock (goroutines of one process too, since each takes its
	// own descriptor) and then find the result.
	if err := os.MkdirAll(tools, 0o755); err != nil {
		return "", fmt.Errorf("toolbin: %w", err)
	}
	unlock, err := lockFile(filepath.Join(tools, "."+t.Name+"-"+t.Version+".lock"))
	if err != nil {
		return "", fmt.Errorf("toolbin: lock: %w", err)
	}
	defer unlock()
	if t.complete(dir) {
		return dir, nil
	}

	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "toolbin: %s missing; building it with %s (%s)\n", dir, t.Script, t.Takes)
	tail := &Tail{}
	cmd := exec.Command("bash", filepath.Join(root, t.Script))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), ToolsDirEnv+"="+tools, LockHeldEnv+"=1")
	cmd.Env = append(cmd.Env, t.Env...)
	// The scripts print only the tool's directory on stdout; their progress
	// goes to stderr, shown live and kept for the error.
	cmd.Stdout = io.Discard
	cmd.Stderr = io.MultiWriter(os.Stderr, tail)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("toolbin: %s failed: %w\n%s", t.Script, err, tail.String())
	}
	if !t.complete(dir) {
		return "", fmt.Errorf("toolbin: %s succeeded but %s lacks %s", t.Script, dir, strings.Join(t.Files, "/"))
	}
	return dir, nil
}

func (t Tool) complete(dir string) bool {
	for _, f := range t.Files {
		if !isExecutable(filepath.Join(dir, f)) {
			return false
		}
	}
	return true
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// Tail keeps the last Max bytes written to it (8 KiB when Max is 0): enough
// of a build's or a server's output to explain a failure without flooding
// the test log.
type Tail struct {
	Max int
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Tail) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	limit := b.Max
	if limit <= 0 {
		limit = 8 << 10
	}
	if over := b.buf.Len() - limit; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *Tail) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
