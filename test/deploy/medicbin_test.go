package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/medichq/medic/test/deploy"
)

// buildEnv and buildArgs are the Dockerfile's build command (and make
// build's); TestDockerfile checks that the Dockerfile still says this.
var (
	buildEnv  = []string{"CGO_ENABLED=0", "GOFLAGS=-buildvcs=false"}
	buildArgs = func(out, version string) []string {
		return []string{"build", "-trimpath", "-ldflags", "-s -w -X github.com/medichq/medic/internal/version.Version=" + version, "-o", out, "./cmd/medic"}
	}
)

var (
	medicOnce sync.Once
	medicBin  string
	medicErr  error
	medicOut  []byte
)

// medicBinary builds medic once per test binary with the Dockerfile's
// command, outside Docker.
func medicBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds medic")
	}
	medicOnce.Do(func() {
		dir, err := os.MkdirTemp("", "medic-deploy-bin-")
		if err != nil {
			medicErr = err
			return
		}
		binDirs = append(binDirs, dir)
		out := filepath.Join(dir, "medic")
		cmd := exec.Command("go", buildArgs(out, "deploy-test")...)
		cmd.Dir = must(deploy.RepoRoot())
		cmd.Env = append(os.Environ(), buildEnv...)
		medicOut, medicErr = cmd.CombinedOutput()
		medicBin = out
	})
	if medicErr != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./cmd/medic: %v\n%s", medicErr, medicOut)
	}
	return medicBin
}

// binDirs are removed when the tests end (TestMain).
var binDirs []string

func removeBinDirs() {
	for _, d := range binDirs {
		_ = os.RemoveAll(d)
	}
}
