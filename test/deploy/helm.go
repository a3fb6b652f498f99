// Package deploy tests what `deploy/` ships: the Helm chart
// (deploy/helm/medic), the manifests rendered from it (deploy/manifests), the
// Dockerfile and deploy/compose.yaml. Helm itself is built from its Go module
// by test/tools/build-helm.sh into the ignored tools folder, like the other
// third-party tools the tests run.
//
// The non-test files hold what the tests and the generators share:
// rendering the chart, parsing manifests, the RBAC and secret checks, and the
// values documentation (go run ./test/deploy/valuesdoc).
package deploy

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

// HelmVersion is the Helm release the chart is linted and rendered with;
// test/tools/build-helm.sh and Makefile.tools.mk pin the same one.
const HelmVersion = "v3.22.0"

// Release and Namespace are the release name and namespace the chart is
// rendered with (golden files, deploy/manifests): they give the
// ServiceAccount medic/medic that deploy/rbac and test/kubeapi use.
const (
	Release   = "medic"
	Namespace = "medic"
)

const (
	modulePath = "github.com/medichq/medic"
	buildRel   = "test/tools/build-helm.sh"
	// ToolsDirEnv overrides where built tools live; relative to the
	// repository root when relative.
	ToolsDirEnv = "MEDIC_TOOLS_DIR"
	lockHeldEnv = "MEDIC_TOOLS_LOCK_HELD"
)

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
	helmMu   sync.Mutex
	helmPath string
)

// RepoRoot finds the medic repository root (the go.mod of module
// github.com/medichq/medic at or above the working directory or this file).
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
	return "", fmt.Errorf("deploy: no go.mod for module %s above %v", modulePath, starts)
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

// ChartDir is deploy/helm/medic.
func ChartDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "deploy", "helm", "medic"), nil
}

// ToolsDir returns the absolute tools directory.
func ToolsDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	if d := os.Getenv(ToolsDirEnv); d != "" {
		if filepath.IsAbs(d) {
			return filepath.Clean(d), nil
		}
		return filepath.Join(root, d), nil
	}
	return filepath.Join(root, ".tools"), nil
}

// HelmPath is where the built helm binary lives (or will).
func HelmPath() (string, error) {
	tools, err := ToolsDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(tools, "helm-"+HelmVersion, "helm"), nil
}

// HelmBuilt reports whether helm is already built (tests run with -short
// skip rather than build it).
func HelmBuilt() bool {
	p, err := HelmPath()
	return err == nil && isExecutable(p)
}

// Helm returns the helm binary, building it first with
// test/tools/build-helm.sh when it is missing (about two minutes, once).
func Helm() (string, error) {
	helmMu.Lock()
	defer helmMu.Unlock()
	if helmPath != "" {
		return helmPath, nil
	}
	bin, err := HelmPath()
	if err != nil {
		return "", err
	}
	if isExecutable(bin) {
		helmPath = bin
		return bin, nil
	}
	tools := filepath.Dir(filepath.Dir(bin))
	if err := os.MkdirAll(tools, 0o755); err != nil {
		return "", fmt.Errorf("deploy: %w", err)
	}
	// Parallel test packages are separate processes: one builds, the others wait.
	unlock, err := lockFile(filepath.Join(tools, ".helm-"+HelmVersion+".lock"))
	if err != nil {
		return "", fmt.Errorf("deploy: lock: %w", err)
	}
	defer unlock()
	if isExecutable(bin) {
		helmPath = bin
		return bin, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "deploy: %s missing; building it with %s (about 2 minutes on 2 cores, once)\n", bin, buildRel)
	var tail bytes.Buffer
	cmd := exec.Command("bash", filepath.Join(root, buildRel))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), ToolsDirEnv+"="+tools, lockHeldEnv+"=1", "HELM_VERSION="+HelmVersion)
	cmd.Stdout = io.Discard
	cmd.Stderr = io.MultiWriter(os.Stderr, &tail)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("deploy: %s failed: %w\n%s", buildRel, err, lastLines(tail.String(), 40))
	}
	if !isExecutable(bin) {
		return "", fmt.Errorf("deploy: %s succeeded but %s is missing", buildRel, bin)
	}
	helmPath = bin
	return bin, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RunHelm runs helm with args in the repository root and returns stdout;
// an error carries stderr.
func RunHelm(args ...string) (string, error) {
	bin, err := Helm()
	if err != nil {
		return "", err
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	// Nothing may leak in from the user's Helm setup or cluster.
	home, err := os.MkdirTemp("", "medic-helm-home-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(home)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"),
	)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		// helm prints coalescing and deprecation warnings on stderr: the
		// chart must render without any.
		return stdout.String(), fmt.Errorf("helm %s printed warnings:\n%s", strings.Join(args, " "), s)
	}
	return stdout.String(), nil
}

// Template renders the chart as release medic in namespace medic with the
// values files given (relative to the repository root) and --set pairs.
func Template(valuesFiles []string, sets ...string) (string, error) {
	chart, err := ChartDir()
	if err != nil {
		return "", err
	}
	return TemplateChart(chart, valuesFiles, sets...)
}

// TemplateChart renders the chart at dir (a copy, in some tests).
func TemplateChart(dir string, valuesFiles []string, sets ...string) (string, error) {
	args := []string{"template", Release, dir, "--namespace", Namespace}
	for _, f := range valuesFiles {
		args = append(args, "--values", f)
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return RunHelm(args...)
}
