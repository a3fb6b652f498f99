// Package gittest makes real Git repositories with the git CLI and serves
// them over Git's smart HTTP protocol (git http-backend behind net/http/cgi)
// or file://, for tests of medic's playbook repositories. medic itself talks
// to repositories through go-git only; only tests use the CLI.
package gittest

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// NeedGit skips the test when git is not installed and returns its path.
func NeedGit(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	return p
}

// gitEnv isolates git from the machine's configuration.
func gitEnv(home string) []string {
	return append(os.Environ(),
		"HOME="+home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+filepath.Join(home, "gitconfig"),
		"GIT_AUTHOR_NAME=Playbook Author", "GIT_AUTHOR_EMAIL=author@example.com",
		"GIT_COMMITTER_NAME=Playbook Author", "GIT_COMMITTER_EMAIL=author@example.com",
		"GIT_TERMINAL_PROMPT=0",
	)
}

// Remote is a bare repository ("the server") and a working clone ("a
// teammate's laptop") that pushes to it.
type Remote struct {
	t testing.TB
	// Root holds <name>.git; ServeHTTP serves it.
	Root string
	// Bare is the bare repository; Work the working clone.
	Bare string
	Work string
	home string
}

// NewRemote makes an empty repository whose default branch is main.
func NewRemote(t testing.TB, name string) *Remote {
	t.Helper()
	NeedGit(t)
	base := t.TempDir()
	r := &Remote{t: t, Root: filepath.Join(base, "srv"), home: filepath.Join(base, "home"), Work: filepath.Join(base, "work")}
	r.Bare = filepath.Join(r.Root, name+".git")
	for _, d := range []string{r.Root, r.home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r.Git(base, "init", "-q", "--bare", "-b", "main", r.Bare)
	r.Git(base, "init", "-q", "-b", "main", r.Work)
	r.Git(r.Work, "remote", "add", "origin", r.Bare)
	return r
}

// Git runs git in dir and returns its trimmed output.
func (r *Remote) Git(dir string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv(r.home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Push writes files (path → content; "" deletes), commits and pushes to
// branch main, and returns the commit hash.
func (r *Remote) Push(msg string, files map[string]string) string {
	r.t.Helper()
	return r.PushBranch("main", msg, files)
}

// PushBranch is Push to another branch.
func (r *Remote) PushBranch(branch, msg string, files map[string]string) string {
	r.t.Helper()
	for p, content := range files {
		full := filepath.Join(r.Work, p)
		if content == "" {
			if err := os.Remove(full); err != nil && !os.IsNotExist(err) {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.Git(r.Work, "add", "-A")
	r.Git(r.Work, "commit", "-q", "--allow-empty", "-m", msg)
	r.Git(r.Work, "push", "-q", "origin", "HEAD:refs/heads/"+branch)
	return r.Git(r.Work, "rev-parse", "HEAD")
}

// FileURL is the bare repository as a file:// URL.
func (r *Remote) FileURL() string { return "file://" + r.Bare }

// WorkFileURL is the working clone (not bare) as a file:// URL: what a
// newcomer points medic at when trying a playbook repository on a laptop.
// Its branch main holds every commit Push made.
func (r *Remote) WorkFileURL() string { return "file://" + r.Work }

// Server serves every repository under a root over smart HTTP. With a
// token, requests must carry it as basic auth (user x-access-token), as
// GitHub, GitLab and Gitea accept it.
type Server struct {
	*httptest.Server
	Requests     atomic.Int64
	AuthFailures atomic.Int64
	// Down makes the server answer 503, as an outage would.
	Down atomic.Bool
}

// ServeHTTP serves root until the test ends.
func ServeHTTP(t testing.TB, root, token string) *Server {
	t.Helper()
	gitPath := NeedGit(t)
	backend := &cgi.Handler{
		Path: gitPath,
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + root},
	}
	s := &Server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.Requests.Add(1)
		if s.Down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		if token != "" {
			user, pass, ok := req.BasicAuth()
			if !ok || user != "x-access-token" || pass != token {
				s.AuthFailures.Add(1)
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		backend.ServeHTTP(w, req)
	}))
	t.Cleanup(s.Close)
	return s
}

// RepoURL is the smart HTTP URL of <name>.git.
func (s *Server) RepoURL(name string) string { return s.URL + "/" + name + ".git" }
