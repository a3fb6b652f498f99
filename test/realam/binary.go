// Package realam runs a real Prometheus Alertmanager for medic's tests.
//
// The binary is built from the module proxy by test/tools/build-alertmanager.sh
// into the per-user tools cache, alertmanager-<Version>/
// (toolbin.ToolsDir; or $MEDIC_TOOLS_DIR) and reused afterwards. When it is missing, Binary runs
// the script itself, so `go test` works on a clean checkout (the first run
// takes a minute or two). Nothing is ever installed by hand.
package realam

import (
	"path/filepath"

	"github.com/medichq/medic/test/toolbin"
)

// Version is the Alertmanager release the tests run against.
const Version = "v0.34.2"

// ToolsDirEnv overrides where built tools live. A relative value is taken
// relative to the repository root (the build script does the same).
const ToolsDirEnv = toolbin.ToolsDirEnv

// amTool is built as a pair: one script makes both binaries.
var amTool = toolbin.Tool{
	Name:    "alertmanager",
	Version: Version,
	Script:  "test/tools/build-alertmanager.sh",
	Files:   []string{"alertmanager", "amtool"},
	Takes:   "a minute or two",
}

// Binary returns the absolute path of the alertmanager binary, building it
// (and amtool) first when it is absent.
func Binary() (string, error) { return binPath("alertmanager") }

// Built reports whether alertmanager and amtool are built already, so that
// -short runs can skip rather than build them.
func Built() bool { return amTool.Built() }

// Amtool returns the absolute path of the amtool binary built alongside
// Alertmanager, building both when absent.
func Amtool() (string, error) { return binPath("amtool") }

func binPath(name string) (string, error) {
	dir, err := amTool.Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

// ToolsDir returns the absolute tools directory: $MEDIC_TOOLS_DIR when set,
// else the per-user tools cache (see toolbin.ToolsDir).
func ToolsDir() (string, error) { return toolbin.ToolsDir() }

// RepoRoot finds the medic repository root: the nearest directory at or above
// the working directory whose go.mod declares module github.com/medichq/medic,
// falling back to the location of the toolbin source.
func RepoRoot() (string, error) { return toolbin.RepoRoot() }
