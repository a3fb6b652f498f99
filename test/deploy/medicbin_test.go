package deploy_test

import (
	"testing"

	"github.com/medichq/medic/test/toolbin"
)

// buildArgs is the Dockerfile's build command (and make build's);
// TestDockerfile checks that the Dockerfile still says this.
var buildArgs = toolbin.MedicBuildArgs

// medicBinary is medic built with that command, outside Docker, once per
// test binary (or by make test once for every package: toolbin.Medic).
func medicBinary(t *testing.T) string {
	t.Helper()
	return toolbin.Medic(t)
}
