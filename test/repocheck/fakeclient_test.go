package repocheck

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/medichq/medic/test/toolbin"
)

const module = "github.com/medichq/medic"

// fakeClients are client-go's in-memory API servers: test fixtures that do
// not belong in the server.
var fakeClients = []string{"k8s.io/client-go/kubernetes/fake", "k8s.io/client-go/dynamic/fake"}

// fakeClientImporters are the production packages (those the commands under
// cmd/ link) allowed to import a fake client directly, and why. Test helpers
// are not linked by a command and are not looked at.
var fakeClientImporters = map[string]string{
	module + "/sources/kubernetes/kubefixture": "runs the detector over objects from files, for medic playbooks test --event",
}

// fakeClientUsers are the production packages allowed to import those
// importers: the playbook-test tooling, which the issue allows a fake
// cluster.
var fakeClientUsers = map[string]string{
	module + "/playbooks/playtest": "medic playbooks test",
}

// The server's code (medic serve: internal/app, the triggers, actions and
// sinks) links no fake clientset: only the playbook-test tooling does,
// through kubefixture.
func TestNoFakeClientsetInProduction(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("needs go in PATH: %v", err)
	}
	root, err := toolbin.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports", "./cmd/...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		imports[p.ImportPath] = p.Imports
	}
	var bad []string
	for pkg, imps := range imports {
		if !strings.HasPrefix(pkg, module+"/") {
			continue
		}
		for _, imp := range imps {
			switch {
			case slices.Contains(fakeClients, imp) && fakeClientImporters[pkg] == "":
				bad = append(bad, pkg+" imports "+imp)
			case fakeClientImporters[imp] != "" && fakeClientUsers[pkg] == "":
				bad = append(bad, pkg+" imports "+imp+" (which links a fake clientset)")
			}
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("production packages link client-go's fake clientset; move the fixture into a _test.go file or kubefixture:\n  %s",
			strings.Join(bad, "\n  "))
	}
	// The check must see the packages it guards.
	for _, pkg := range []string{module + "/internal/app", module + "/sources/kubernetes", module + "/playbooks/playtest"} {
		if _, ok := imports[pkg]; !ok {
			t.Errorf("go list did not list %s", pkg)
		}
	}
	for pkg := range fakeClientImporters {
		if !importsAny(imports[pkg], fakeClients) {
			t.Errorf("%s is allowed a fake clientset but imports none: drop it from fakeClientImporters", pkg)
		}
	}
}

func importsAny(imps, want []string) bool {
	return slices.ContainsFunc(imps, func(imp string) bool { return slices.Contains(want, imp) })
}
