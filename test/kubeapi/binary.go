// Package kubeapi runs a real Kubernetes API server (kube-apiserver and
// etcd, no kubelet, no controllers) for medic's tests.
//
// The binaries are built from the module proxy by test/tools/build-kube.sh
// (the wrapper module test/tools/kube) into the ignored folder
// kube-<Version>/ in the per-user tools cache (toolbin.ToolsDir) and
// reused afterwards. When they are missing, Binaries runs the script itself,
// so `go test` works on a clean checkout; the first build takes about five
// minutes on two cores.
package kubeapi

import (
	"path/filepath"

	"github.com/medichq/medic/test/toolbin"
)

// Version is the Kubernetes release the tests run against.
const Version = "v1.36.3"

// ToolsDirEnv overrides where built tools live; a relative value is
// relative to the repository root (the build script does the same).
const ToolsDirEnv = toolbin.ToolsDirEnv

var kubeTool = toolbin.Tool{
	Name:    "kube",
	Version: Version,
	Script:  "test/tools/build-kube.sh",
	Files:   []string{"kube-apiserver", "etcd"},
	Takes:   "about 5 minutes on 2 cores, once",
}

// Paths of the two binaries.
type Paths struct {
	APIServer string
	Etcd      string
}

// Binaries returns the kube-apiserver and etcd binaries, building them
// first when they are absent.
func Binaries() (Paths, error) {
	dir, err := kubeTool.Dir()
	if err != nil {
		return Paths{}, err
	}
	return Paths{APIServer: filepath.Join(dir, "kube-apiserver"), Etcd: filepath.Join(dir, "etcd")}, nil
}

// ToolsDir returns the absolute tools directory.
func ToolsDir() (string, error) { return toolbin.ToolsDir() }

// RepoRoot finds the medic repository root (the go.mod of module
// github.com/medichq/medic at or above the working directory).
func RepoRoot() (string, error) { return toolbin.RepoRoot() }
