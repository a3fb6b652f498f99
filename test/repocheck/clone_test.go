package repocheck

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/medichq/medic/test/toolbin"
)

// homePath matches an absolute path into a home folder: root's, a Linux
// user's or a macOS user's. Such a path works on one machine only.
var homePath = regexp.MustCompile(`/(root|home/[a-z_][a-z0-9_.-]*|Users/[A-Za-z0-9_.-]+)/`)

// homePathAllowed lists the tracked files that must name such a path, and
// why; everything else fails. A file is listed, not a kind of file
// (markdown included), so a new mention is looked at.
var homePathAllowed = map[string]string{
	// The build stage runs as root; its cache mounts are root's Go module
	// and build caches inside the build container.
	"Dockerfile": "BuildKit cache mounts at the build container's Go caches",
	// The ollama/ollama image keeps its models in its root user's home.
	"deploy/compose.yaml": "the model volume of the Ollama container",
}

// clone returns a fresh clone of the repository's committed HEAD in a
// temporary folder: what a newcomer gets, without the ignored build
// outputs and untracked files of this checkout.
func clone(t *testing.T) string {
	t.Helper()
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skipf("needs git in PATH: %v", err)
	}
	root, err := toolbin.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "medic")
	if out, err := exec.Command(git, "clone", "--quiet", "--no-hardlinks", root, dir).CombinedOutput(); err != nil {
		t.Fatalf("git clone %s: %v\n%s", root, err, out)
	}
	return dir
}

// A clone has no symbolic links (they point into one machine's layout or
// break on Windows checkouts) and no absolute home paths.
func TestCloneHasNoLinksOrHomePaths(t *testing.T) {
	dir := clone(t)
	cmd := exec.Command("git", "ls-files", "-s", "-z")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	seen := map[string]bool{}
	files := 0
	for _, entry := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		// "<mode> <object> <stage>\t<path>"
		meta, path, ok := strings.Cut(entry, "\t")
		if !ok {
			t.Fatalf("git ls-files -s: unexpected entry %q", entry)
		}
		files++
		if strings.HasPrefix(meta, "120000 ") {
			t.Errorf("%s is a symbolic link", path)
			continue
		}
		if strings.HasPrefix(meta, "160000 ") { // a submodule: no content here
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(path)))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(b, 0) >= 0 { // binary (the tiny models): not text anyone wrote a path into
			continue
		}
		if _, ok := homePathAllowed[path]; ok {
			seen[path] = true
			continue
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := homePath.FindString(line); m != "" {
				t.Errorf("%s:%d names a home folder (%s): %s", path, i+1, m, strings.TrimSpace(line))
			}
		}
	}
	if files < 100 {
		t.Fatalf("the clone lists only %d files", files)
	}
	// An allowance for a file that no longer exists is stale.
	for path := range homePathAllowed {
		if !seen[path] {
			t.Errorf("homePathAllowed lists %s, which the clone does not have", path)
		}
	}
}

// The pattern itself: what it must and must not flag.
func TestHomePathPattern(t *testing.T) {
	for _, c := range []struct {
		text string
		want bool
	}{
		{"/" + "root/.cache/go-build", true},
		{"cd /" + "home/alice/src/medic", true},
		{"/" + "Users/bob/go/pkg", true},
		{"/var/run/secrets/medic/token", false},
		{"/etc/alertmanager/secrets/medic/alertmanager-token", false},
		{"$HOME/.cache/medic/tools", false},
		{"~/.kube/config", false},
	} {
		if got := homePath.MatchString(c.text); got != c.want {
			t.Errorf("homePath.MatchString(%q) = %v, want %v", c.text, got, c.want)
		}
	}
}
