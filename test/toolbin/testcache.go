package toolbin

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Go's test cache replays a package's earlier result when the test binary,
// the environment variables the tests read and the files inside the module
// they opened or stat'ed are unchanged. It cannot see what a test hands to
// another process: the chart a real helm renders, the configuration file a
// medic binary loads, the commits a git clone copies, the manifests a real
// kube-apiserver is given. A package that runs tools may read any file of the
// repository that way, so the first time it asks toolbin for anything, toolbin
// stats every file of the working tree (and git's HEAD and its log) on its
// behalf: the package's cached result then stands only while none of them
// changed, and any edit, commit or checkout runs it again.
//
// The tools themselves live outside the module, which the cache does not
// look at; their name and version are in this package's Go code (a new pin
// is a new test binary) and their build scripts are inside the module.

// skipDirs are the folders of the working tree, relative to its root, that
// no test reads: git's objects (HEAD's log stands for them) and ignored
// output (.gitignore). Only the walk without git uses them.
var skipDirs = map[string]bool{".git": true, "bin": true, "data": true, ".tools": true, "test/bench/results": true}

// trackRepository stats every file of the working tree under root, so Go's
// test cache keys the package's result on them (see above). RepoRoot calls
// it once per test binary. Outside a test it does nothing.
//
// The file list comes from git (tracked files and untracked ones not
// ignored), not from reading the folders: the test log would record a
// folder's listing with the modification times of its entries, and git
// itself touches .git and the index whenever it refreshes them (go build's
// VCS stamp does), which would make every result stale. HEAD's log changes on
// every commit, checkout and reset, which is what a git clone copies.
func trackRepository(root string) {
	if !testing.Testing() {
		return
	}
	for _, f := range []string{"HEAD", filepath.Join("logs", "HEAD")} {
		_, _ = os.Stat(filepath.Join(root, ".git", f))
	}
	files, err := treeFiles(root)
	if err != nil {
		walkTree(root) // not a git checkout (an unpacked archive)
		return
	}
	for _, name := range files {
		_, _ = os.Stat(filepath.Join(root, name)) // the stat is what the test log records
	}
}

// treeFiles lists the working tree's files, relative to root, as git sees
// them: tracked, and untracked but not ignored.
func treeFiles(root string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files in %s: %w", root, err)
	}
	var files []string
	for name := range strings.SplitSeq(string(out), "\x00") {
		if name != "" {
			files = append(files, name)
		}
	}
	return files, nil
}

// walkTree stats every file under root but the skipped folders.
func walkTree(root string) {
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable: nothing a test could read either
		}
		if d.IsDir() {
			if rel, err := filepath.Rel(root, path); err == nil && skipDirs[filepath.ToSlash(rel)] {
				return filepath.SkipDir
			}
			return nil
		}
		_, _ = os.Stat(path)
		return nil
	})
}
