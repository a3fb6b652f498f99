// Package realam runs a real Prometheus Alertmanager for medic's tests.
//
// The binary is built from the module proxy by test/tools/build-alertmanager.sh
// into the ignored folder .tools/alertmanager-<Version>/ at the repository root
// (or $MEDIC_TOOLS_DIR) and reused afterwards. When it is missing, Binary runs
// the script itself, so `go test` works on a clean checkout (the first run
// takes a minute or two). Nothing is ever installed by hand.
package realam

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

// Version is the Alertmanager release the tests run against.
const Version = "v0.34.2"

const (
	modulePath = "github.com/medichq/medic"
	buildRel   = "test/tools/build-alertmanager.sh"
	// ToolsDirEnv overrides where built tools live. A relative value is taken
	// relative to the repository root (the build script does the same).
	ToolsDirEnv = "MEDIC_TOOLS_DIR"
	// lockHeldEnv tells the build script its caller already holds the lock.
	lockHeldEnv = "MEDIC_TOOLS_LOCK_HELD"
)

var (
	binMu    sync.Mutex
	binDir   string // set once both binaries are known to exist
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// Binary returns the absolute path of the alertmanager binary, building it
// (and amtool) first when it is absent.
func Binary() (string, error) {
	dir, err := binaries()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "alertmanager"), nil
}

// Amtool returns the absolute path of the amtool binary built alongside
// Alertmanager, building both when absent.
func Amtool() (string, error) {
	dir, err := binaries()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "amtool"), nil
}

// ToolsDir returns the absolute tools directory: $MEDIC_TOOLS_DIR when set,
// else .tools at the repository root.
func ToolsDir() (string, error) {
	if d := os.Getenv(ToolsDirEnv); d != "" {
		if filepath.IsAbs(d) {
			return filepath.Clean(d), nil
		}
		root, err := RepoRoot()
		if err != nil {
			return "", fmt.Errorf("relative %s=%q needs the repository root: %w", ToolsDirEnv, d, err)
		}
		return filepath.Join(root, d), nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".tools"), nil
}

// RepoRoot finds the medic repository root: the nearest directory at or above
// the working directory whose go.mod declares module github.com/medichq/medic,
// falling back to the location of this source file.
func RepoRoot() (string, error) {
	rootOnce.Do(func() { rootDir, rootErr = findRoot() })
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
	return "", fmt.Errorf("realam: no go.mod for module %s above %v", modulePath, starts)
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

func binaries() (string, error) {
	binMu.Lock()
	defer binMu.Unlock()
	if binDir != "" && bothExecutable(binDir) {
		return binDir, nil
	}
	tools, err := ToolsDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(tools, "alertmanager-"+Version)
	if bothExecutable(dir) {
		binDir = dir
		return dir, nil
	}

	// Parallel test packages are separate processes: serialise the build
	// with a lock file next to the result.
	if err := os.MkdirAll(tools, 0o755); err != nil {
		return "", fmt.Errorf("realam: %w", err)
	}
	unlock, err := lockFile(filepath.Join(tools, ".alertmanager-"+Version+".lock"))
	if err != nil {
		return "", fmt.Errorf("realam: lock: %w", err)
	}
	defer unlock()
	if bothExecutable(dir) { // another process built it while we waited
		binDir = dir
		return dir, nil
	}

	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, buildRel)
	fmt.Fprintf(os.Stderr, "realam: %s missing; building it with %s (a minute or two)\n", dir, buildRel)
	var tail tailBuffer
	cmd := exec.Command("bash", script)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), ToolsDirEnv+"="+tools, lockHeldEnv+"=1")
	cmd.Stdout = io.Discard
	cmd.Stderr = io.MultiWriter(os.Stderr, &tail)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("realam: %s failed: %w\n%s", buildRel, err, tail.String())
	}
	if !bothExecutable(dir) {
		return "", fmt.Errorf("realam: %s succeeded but %s lacks alertmanager/amtool", buildRel, dir)
	}
	binDir = dir
	return dir, nil
}

func bothExecutable(dir string) bool {
	return isExecutable(filepath.Join(dir, "alertmanager")) && isExecutable(filepath.Join(dir, "amtool"))
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// tailBuffer keeps the last 8 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const tailMax = 8 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - tailMax; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
