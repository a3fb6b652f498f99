package repocheck

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/medichq/medic/test/toolbin"
)

// maxConfigDeps bounds what linking package config costs (issue 15: it
// was 757 packages while config validated the sinks, the bus and the
// Kubernetes client's settings itself; 137 since it is a leaf).
const maxConfigDeps = 150

// configMayLink are the only medic packages config may reach: leaves that
// import no plugin, the bus or a Kubernetes client.
var configMayLink = []string{
	module + "/config", module + "/params", module + "/redact", module + "/event",
}

// Config decodes and validates its own shape only; what belongs to a sink,
// a source or an action is judged by their registries
// (internal/plugins.Set.ValidateConfig). This keeps it that way: importing
// config must not pull the bus, the sinks, the sources, the actions or
// client-go back in.
func TestConfigIsALeaf(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("needs go in PATH: %v", err)
	}
	root, err := toolbin.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./config")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./config: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, module+"/config") {
		t.Fatalf("go list -deps ./config did not list config itself:\n%s", out)
	}
	if len(deps) >= maxConfigDeps {
		t.Errorf("config links %d packages, want under %d", len(deps), maxConfigDeps)
	}
	for _, dep := range deps {
		switch {
		case strings.HasPrefix(dep, module+"/") && !slices.Contains(configMayLink, dep):
			t.Errorf("config links %s; only %v may be (hand the node to the plugin's registry instead)", dep, configMayLink)
		case strings.HasPrefix(dep, "k8s.io/client-go/"), strings.HasPrefix(dep, "github.com/nats-io/"):
			t.Errorf("config links %s", dep)
		}
	}
}
