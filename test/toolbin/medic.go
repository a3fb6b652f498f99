package toolbin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The medic binary the process-level tests run (test/e2e, test/deploy) is
// built the way the Dockerfile and `make build` build it: static, trimmed
// paths, stripped. One flavour for every test that needs a binary means one
// compile of medic's packages per change, and -trimpath makes that compile
// independent of where the clone lives, so a fresh clone on a warm machine
// reuses it from the Go build cache.
const (
	// MedicBinaryEnv names a medic binary already built by BuildMedic (make
	// test builds one before the process-level tests and sets it, so their
	// packages do not each build their own at the same time).
	MedicBinaryEnv = "MEDIC_BINARY"
	// MedicBuildingEnv names a file that exists while make test is still
	// building $MEDIC_BINARY in the background: Medic waits for it to go, so
	// the real-server packages that need no binary start at once.
	MedicBuildingEnv = "MEDIC_BINARY_BUILDING"
	// MedicTestVersion is the version the test binary reports.
	MedicTestVersion = "deploy-test"
)

// MedicBuildEnv and MedicBuildArgs are the Dockerfile's build command (and
// make build's); test/deploy checks that both still say this.
var MedicBuildEnv = []string{"CGO_ENABLED=0", "GOFLAGS=-buildvcs=false"}

// MedicBuildArgs are the arguments to `go` that build cmd/medic into out.
func MedicBuildArgs(out, version string) []string {
	return []string{"build", "-trimpath", "-ldflags", "-s -w -X github.com/medichq/medic/internal/version.Version=" + version, "-o", out, "./cmd/medic"}
}

// BuildMedic builds cmd/medic into out with MedicBuildArgs and version.
func BuildMedic(ctx context.Context, out, version string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", MedicBuildArgs(out, version)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), MedicBuildEnv...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("CGO_ENABLED=0 go build ./cmd/medic: %w\n%s", err, b)
	}
	return nil
}

var (
	medicOnce sync.Once
	medicPath string
	medicDir  string
	medicErr  error
)

// Medic returns the medic binary for process-level tests: $MEDIC_BINARY when
// set, else one built with BuildMedic (version MedicTestVersion) once per
// test binary. A test package that calls it removes the build with
// RemoveMedic from its TestMain.
func Medic(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the medic binary")
	}
	medicOnce.Do(func() {
		_, _ = RepoRoot() // for the test cache: medic may load any file of the tree
		if p := os.Getenv(MedicBinaryEnv); p != "" {
			if marker := os.Getenv(MedicBuildingEnv); marker != "" {
				waitForBuild(t, marker)
				if medicErr != nil {
					return
				}
			}
			if !isExecutable(p) {
				medicErr = fmt.Errorf("%s=%s is not an executable file", MedicBinaryEnv, p)
			}
			medicPath = p
			return
		}
		medicDir, medicErr = os.MkdirTemp("", "medic-test-bin-")
		if medicErr != nil {
			return
		}
		medicPath = filepath.Join(medicDir, "medic")
		medicErr = BuildMedic(context.Background(), medicPath, MedicTestVersion)
	})
	if medicErr != nil {
		t.Fatal(medicErr)
	}
	return medicPath
}

// medicBuildTimeout bounds the wait for make test's background build; a cold
// static compile of medic takes 2-3 minutes on 2 busy cores.
const medicBuildTimeout = 15 * time.Minute

// waitForBuild waits until marker no longer exists: make test removes it
// when its build of $MEDIC_BINARY ends, and removes the binary too when the
// build failed, so the caller's check then names the problem.
func waitForBuild(t testing.TB, marker string) {
	deadline := time.Now().Add(medicBuildTimeout)
	logged := false
	for {
		if !markerExists(marker) {
			return
		}
		if time.Now().After(deadline) {
			medicErr = fmt.Errorf("%s=%s still exists after %v: the background build of the medic binary did not end", MedicBuildingEnv, marker, medicBuildTimeout)
			return
		}
		if !logged {
			t.Logf("waiting for make test's build of the medic binary (%s)", marker)
			logged = true
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// RemoveMedic removes the binary Medic built, if it built one.
func RemoveMedic() {
	if medicDir != "" {
		_ = os.RemoveAll(medicDir)
	}
}
