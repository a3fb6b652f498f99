// Package kubeapi runs a real Kubernetes API server (kube-apiserver and
// etcd, no kubelet, no controllers) for medic's tests.
//
// The binaries are built from the module proxy by test/tools/build-kube.sh
// (the wrapper module test/tools/kube) into the ignored folder
// .tools/kube-<Version>/ at the repository root (or $MEDIC_TOOLS_DIR) and
// reused afterwards. When they are missing, Binaries runs the script itself,
// so `go test` works on a clean checkout; the first build takes about five
// minutes on two cores.
package kubeapi

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

// Version is the Kubernetes release the tests run against.
const Version = "v1.36.3"

const (
	modulePath = "github.com/medichq/medic"
	buildRel   = "test/tools/build-kube.sh"
	// ToolsDirEnv overrides where built tools live; a relative value is
	// relative to the repository root (the build script does the same).
	ToolsDirEnv = "MEDIC_TOOLS_DIR"
	lockHeldEnv = "MEDIC_TOOLS_LOCK_HELD"
)

var (
	binMu    sync.Mutex
	binDir   string
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// Paths of the two binaries.
type Paths struct {
	APIServer string
	Etcd      string
}

// Binaries returns the kube-apiserver and etcd binaries, building them
// first when they are absent.
func Binaries() (Paths, error) {
	dir, err := binaries()
	if err != nil {
		return Paths{}, err
	}
	return Paths{APIServer: filepath.Join(dir, "kube-apiserver"), Etcd: filepath.Join(dir, "etcd")}, nil
}

// ToolsDir returns the absolute tools directory.
func ToolsDir() (string, error) {
	if d := os.Getenv(ToolsDirEnv); d != "" {
		if filepath.IsAbs(d) {
			return filepath.Clean(d), nil
		}
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		return filepath.Join(root, d), nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".tools"), nil
}

// RepoRoot finds the medic repository root (the go.mod of module
// github.com/medichq/medic at or above the working directory).
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
	return "", fmt.Errorf("kubeapi: no go.mod for module %s above %v", modulePath, starts)
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
	dir := filepath.Join(tools, "kube-"+Version)
	if bothExecutable(dir) {
		binDir = dir
		return dir, nil
	}
	if err := os.MkdirAll(tools, 0o755); err != nil {
		return "", fmt.Errorf("kubeapi: %w", err)
	}
	// Parallel test packages are separate processes: one builds, the others wait.
	unlock, err := lockFile(filepath.Join(tools, ".kube-"+Version+".lock"))
	if err != nil {
		return "", fmt.Errorf("kubeapi: lock: %w", err)
	}
	defer unlock()
	if bothExecutable(dir) {
		binDir = dir
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "kubeapi: %s missing; building it with %s (about 5 minutes on 2 cores, once)\n", dir, buildRel)
	var tail tailBuffer
	cmd := exec.Command("bash", filepath.Join(root, buildRel))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), ToolsDirEnv+"="+tools, lockHeldEnv+"=1")
	cmd.Stdout = io.Discard
	cmd.Stderr = io.MultiWriter(os.Stderr, &tail)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kubeapi: %s failed: %w\n%s", buildRel, err, tail.String())
	}
	if !bothExecutable(dir) {
		return "", fmt.Errorf("kubeapi: %s succeeded but %s lacks kube-apiserver/etcd", buildRel, dir)
	}
	binDir = dir
	return dir, nil
}

func bothExecutable(dir string) bool {
	return isExecutable(filepath.Join(dir, "kube-apiserver")) && isExecutable(filepath.Join(dir, "etcd"))
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// tailBuffer keeps the last 16 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const tailMax = 16 << 10

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
