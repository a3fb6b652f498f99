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
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/medichq/medic/test/toolbin"
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

// ToolsDirEnv overrides where built tools live; relative to the
// repository root when relative.
const ToolsDirEnv = toolbin.ToolsDirEnv

var helmTool = toolbin.Tool{
	Name:    "helm",
	Version: HelmVersion,
	Script:  "test/tools/build-helm.sh",
	Files:   []string{"helm"},
	// The script has its own default; passing ours keeps HelmVersion the
	// one that decides.
	Env:   []string{"HELM_VERSION=" + HelmVersion},
	Takes: "about 2 minutes on 2 cores, once",
}

// RepoRoot finds the medic repository root (the go.mod of module
// github.com/medichq/medic at or above the working directory or test/toolbin).
func RepoRoot() (string, error) { return toolbin.RepoRoot() }

// ChartDir is deploy/helm/medic.
func ChartDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "deploy", "helm", "medic"), nil
}

// ToolsDir returns the absolute tools directory.
func ToolsDir() (string, error) { return toolbin.ToolsDir() }

// HelmPath is where the built helm binary lives (or will).
func HelmPath() (string, error) {
	dir, err := helmTool.Path()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "helm"), nil
}

// HelmBuilt reports whether helm is already built (tests run with -short
// skip rather than build it).
func HelmBuilt() bool { return helmTool.Built() }

// Helm returns the helm binary, building it first with
// test/tools/build-helm.sh when it is missing (about two minutes, once).
func Helm() (string, error) {
	dir, err := helmTool.Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "helm"), nil
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
