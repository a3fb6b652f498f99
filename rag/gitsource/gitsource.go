// Package gitsource fetches a Git repository of runbooks for ingestion
// (`medic kb ingest https://github.com/acme/runbooks`), with go-git: a
// shallow clone of one branch into a temporary folder.
package gitsource

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// IsURL reports whether s names a Git repository rather than a folder:
// http(s)://, ssh://, git://, file://…​.git, or scp-like git@host:path.
func IsURL(s string) bool {
	for _, p := range []string{"http://", "https://", "ssh://", "git://", "git+ssh://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	if strings.HasPrefix(s, "file://") {
		return true
	}
	return scpLike.MatchString(s)
}

var scpLike = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/]`)

// Checkout is a cloned repository.
type Checkout struct {
	// Root names the repository in the knowledge base: the URL without
	// credentials, plus #ref when one was asked for.
	Root   string
	Commit string
	Branch string
	Dir    string
	// FS is the worktree.
	FS fs.FS
	// URLFor gives a file's web page on GitHub, GitLab, Gitea-like hosts;
	// "" for other hosts.
	URLFor func(source string) string
}

// Close removes the clone.
func (c *Checkout) Close() error { return os.RemoveAll(c.Dir) }

// Clone fetches rawURL ("URL" or "URL#branch") into a temporary folder.
func Clone(ctx context.Context, rawURL string) (*Checkout, error) {
	repoURL, ref, _ := strings.Cut(rawURL, "#")
	dir, err := os.MkdirTemp("", "medic-kb-git-")
	if err != nil {
		return nil, err
	}
	opts := &git.CloneOptions{URL: repoURL, Depth: 1, SingleBranch: true, Tags: git.NoTags}
	if ref != "" {
		opts.ReferenceName = plumbing.NewBranchReferenceName(ref)
	}
	repo, err := git.PlainCloneContext(ctx, dir, false, opts)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("clone %s: %w", Redact(repoURL), err)
	}
	head, err := repo.Head()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("clone %s: %w", Redact(repoURL), err)
	}
	c := &Checkout{
		Root:   Redact(repoURL),
		Commit: head.Hash().String(),
		Branch: head.Name().Short(),
		Dir:    dir,
		FS:     os.DirFS(dir),
	}
	if ref != "" {
		c.Root += "#" + ref
	}
	if web := webBase(repoURL); web != "" {
		branch := c.Branch
		sep := "/blob/"
		if strings.Contains(web, "gitlab") {
			sep = "/-/blob/"
		}
		c.URLFor = func(source string) string { return web + sep + branch + "/" + source }
	}
	return c, nil
}

// Redact drops credentials from a URL.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	p.User = nil
	return p.String()
}

// webBase is https://host/owner/repo for repositories on well-known forges.
func webBase(u string) string {
	host, p := "", ""
	if m := regexp.MustCompile(`^[^@/]+@([^:]+):(.+)$`).FindStringSubmatch(u); m != nil && !strings.Contains(u, "://") {
		host, p = m[1], m[2]
	} else if pu, err := url.Parse(u); err == nil {
		host, p = pu.Hostname(), pu.Path
	}
	switch {
	case host == "github.com", host == "gitlab.com", host == "codeberg.org", host == "bitbucket.org",
		strings.HasPrefix(host, "gitlab."), strings.HasPrefix(host, "gitea."), strings.HasPrefix(host, "github."):
	default:
		return ""
	}
	p = strings.TrimSuffix(strings.Trim(path.Clean("/"+p), "/"), ".git")
	if p == "" || p == "." {
		return ""
	}
	return "https://" + host + "/" + p
}
