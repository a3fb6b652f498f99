package gitsource

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/medichq/medic/rag"
)

// makeRepo creates a repository with runbooks and returns its file:// URL.
func makeRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := wt.Commit("runbooks", &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	return "file://" + dir
}

func TestCloneAndIngest(t *testing.T) {
	url := makeRepo(t, map[string]string{
		"runbooks/DiskFull.md": "# NodeDiskFull\n\n## Meaning\n\nThe disk is full.\n",
		"README.md":            "# Team runbooks\n",
		".github/x.md":         "# hidden\n",
	})
	co, err := Clone(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	if co.Root != url || len(co.Commit) != 40 || co.URLFor != nil {
		t.Errorf("checkout %+v", co)
	}
	if _, err := fs.Stat(co.FS, "runbooks/DiskFull.md"); err != nil {
		t.Fatal(err)
	}
	s := &countStore{}
	rep, err := (&rag.Ingester{Store: s}).Ingest(context.Background(), co.Root, co.FS)
	if err != nil || rep.Added != 2 {
		t.Fatalf("ingest %+v %v (hidden folders and .git are skipped)", rep, err)
	}
	dir := co.Dir
	co.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Error("clone not removed")
	}
}

func TestIsURLAndWebPages(t *testing.T) {
	for s, want := range map[string]bool{
		"https://github.com/acme/runbooks": true, "git@github.com:acme/runbooks.git": true, "ssh://git@host/x": true,
		"file:///srv/repo": true, "./runbooks": false, "/srv/runbooks": false, "runbooks": false,
	} {
		if IsURL(s) != want {
			t.Errorf("IsURL(%q) = %v", s, !want)
		}
	}
	for u, want := range map[string]string{
		"https://github.com/acme/runbooks.git":   "https://github.com/acme/runbooks",
		"git@github.com:acme/runbooks.git":       "https://github.com/acme/runbooks",
		"https://gitlab.example.com/sre/books":   "https://gitlab.example.com/sre/books",
		"https://git.internal/acme/runbooks":     "",
		"https://user:tok@github.com/acme/r.git": "https://github.com/acme/r",
	} {
		if got := webBase(u); got != want {
			t.Errorf("webBase(%q) = %q, want %q", u, got, want)
		}
	}
	if got := Redact("https://user:tok@github.com/acme/r.git"); got != "https://github.com/acme/r.git" {
		t.Errorf("Redact: %s", got)
	}
}

type countStore struct{ chunks []rag.Chunk }

func (s *countStore) Upsert(_ context.Context, c []rag.Chunk) error {
	s.chunks = append(s.chunks, c...)
	return nil
}
func (s *countStore) DeleteSource(context.Context, string, string) error   { return nil }
func (s *countStore) DeleteAll(context.Context) error                      { return nil }
func (s *countStore) Search(context.Context, rag.Query) ([]rag.Hit, error) { return nil, nil }
func (s *countStore) Sources(context.Context) ([]rag.SourceInfo, error)    { return nil, nil }
func (s *countStore) Version(context.Context) (string, error)              { return "", nil }
func (s *countStore) Close() error                                         { return nil }
