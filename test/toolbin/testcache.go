package toolbin

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Go's test cache replays a package's earlier result when the test binary,
// the environment variables the tests read and the files inside the module
// they opened or stat'ed are unchanged. It cannot see what a test hands to
// another process: the chart a real helm renders, the configuration file a
// medic binary loads, the commits a git clone copies, the manifests a real
// kube-apiserver is given. A package that runs tools may read any file of the
// repository that way, so the first time it asks toolbin for anything, toolbin
// stats every file of the working tree (and git's index and HEAD log) on its
// behalf: the package's cached result then stands only while none of them
// changed, and any edit, commit or checkout runs it again.
//
// The tools themselves live outside the module, which the cache does not
// look at; their name and version are in this package's Go code (a new pin
// is a new test binary) and their build scripts are inside the module.

var trackOnce sync.Once

// skipDirs are the folders of the working tree, relative to its root, that
// no test reads: git's objects (the index and HEAD's log stand for them) and
// ignored output (.gitignore).
var skipDirs = map[string]bool{".git": true, "bin": true, "data": true, ".tools": true, "test/bench/results": true}

// trackRepository stats every file of the working tree under root, once per
// test binary, so Go's test cache keys the package's result on them (see
// above). Outside a test it does nothing.
func trackRepository(root string) {
	if !testing.Testing() {
		return
	}
	trackOnce.Do(func() {
		for _, f := range []string{"index", "HEAD", filepath.Join("logs", "HEAD")} {
			_, _ = os.Stat(filepath.Join(root, ".git", f))
		}
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
			_, _ = os.Stat(path) // the stat is what the test log records
			return nil
		})
	})
}
