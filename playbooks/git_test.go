package playbooks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/gittest"
	"github.com/medichq/medic/internal/testkit"
)

// pb is a valid playbook file whose finding title is title.
func pb(name, title string) string {
	return fmt.Sprintf(`- name: %s
  triggers:
    - on_prometheus_alert: {alert_name: KubePodCrashLooping}
  actions:
    - create_finding:
        title: %q
`, name, title)
}

// badPB has an unknown action on line 5 and an unknown parameter on line 7.
const badPB = `- name: crash
  triggers:
    - on_prometheus_alert: {alert_name: KubePodCrashLooping}
  actions:
    - create_findin:
        title: oops
    - template_enricher: {templte: x}
`

// gitFixture is a Store fed by playbook repositories, with the rejections
// it reported.
type gitFixture struct {
	repos  *Repos
	store  *Store
	engine *Engine
	reg    *prometheus.Registry

	mu       sync.Mutex
	rejected []Rejection
}

func newGitFixture(t *testing.T, cacheDir string, opts ...GitRepoOptions) *gitFixture {
	t.Helper()
	f := &gitFixture{reg: prometheus.NewRegistry()}
	var err error
	f.repos, err = NewRepos(opts, cacheDir, discard(), f.reg)
	if err != nil {
		t.Fatal(err)
	}
	f.store, err = NewStore(func(context.Context) ([]File, error) { return f.repos.Files() }, Options{Plugins: testPlugins}, discard(), f.reg)
	if err != nil {
		t.Fatal(err)
	}
	f.store.OnReject(func(r Rejection) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.rejected = append(f.rejected, r)
	})
	f.store.OnApply(f.repos.MarkApplied)
	f.engine, err = NewEngine(f.store, &actions.Env{Logger: discard()}, time.Second, discard(), f.reg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *gitFixture) rejections() []Rejection {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Rejection(nil), f.rejected...)
}

// run handles a KubePodCrashLooping alert and returns the finding.
func (f *gitFixture) run(t *testing.T) *event.Finding {
	t.Helper()
	res, err := f.engine.Run(context.Background(), alert("KubePodCrashLooping", event.StatusFiring, map[string]string{"namespace": "shop", "pod": "cart-1"}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Finding == nil {
		t.Fatal("no playbook matched")
	}
	return res.Finding
}

// start runs the repositories' polling and refresh loop until the test ends.
func (f *gitFixture) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.repos.Run(ctx, func(ctx context.Context) { _, _ = f.store.Reload(ctx) })
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func short(commit string) string { return commit[:7] }

func TestGitSourceReadsTheCommitsPlaybooks(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "team")
	c1 := r.Push("first", map[string]string{
		"README.md":                    "not a playbook",
		"playbooks/alerts.yaml":        pb("crash", "v1"),
		"playbooks/more/nodes.yml":     pb("nodes", "v1"),
		"playbooks/tests/fixture.yaml": "event: {}\n",
		"playbooks/.hidden/x.yaml":     "not: read",
		"other/ignored.yaml":           "not: read",
	})
	f := newGitFixture(t, t.TempDir(), GitRepoOptions{Name: "team", URL: r.FileURL(), Branch: "main", Path: "playbooks"})
	if err := f.repos.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	set := f.store.Current()
	wantFiles := []string{"team@" + short(c1) + ":playbooks/alerts.yaml", "team@" + short(c1) + ":playbooks/more/nodes.yml"}
	if strings.Join(set.Files, ",") != strings.Join(wantFiles, ",") {
		t.Errorf("files %v, want %v", set.Files, wantFiles)
	}
	if set.Version != "team@"+short(c1) {
		t.Errorf("version %q", set.Version)
	}
	if len(set.Sources) != 1 || set.Sources[0] != (Origin{Repo: "team", Commit: c1}) {
		t.Errorf("sources %+v", set.Sources)
	}
	fd := f.run(t)
	if fd.PlaybookSet != "team@"+short(c1) || fd.Title != "v1" {
		t.Errorf("finding set %q title %q", fd.PlaybookSet, fd.Title)
	}
	want := event.PlaybookSource{Playbook: "crash", Location: "team@" + short(c1) + ":playbooks/alerts.yaml:1", Repo: "team", Commit: c1}
	if len(fd.PlaybookSources) == 0 || fd.PlaybookSources[0] != want {
		t.Errorf("playbook sources %+v, want %+v first", fd.PlaybookSources, want)
	}
}

// TestGitPushLifecycleOverSmartHTTP is the scenario over Git's
// smart HTTP protocol with a token: a valid push is picked up by polling, an
// invalid one is rejected with file and line while the old set keeps
// running, and a fix is picked up.
func TestGitPushLifecycleOverSmartHTTP(t *testing.T) {
	r := gittest.NewRemote(t, "team")
	srv := gittest.ServeHTTP(t, r.Root, "s3cret-token")
	t.Setenv("TEAM_GIT_TOKEN", "s3cret-token")
	c1 := r.Push("v1", map[string]string{"playbooks/alerts.yaml": pb("crash", "v1")})

	f := newGitFixture(t, t.TempDir(), GitRepoOptions{
		Name: "team", URL: srv.RepoURL("team"), Branch: "main", Path: "playbooks",
		PollInterval: 50 * time.Millisecond, Auth: GitAuth{TokenEnv: "TEAM_GIT_TOKEN"},
	})
	if err := f.repos.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.run(t).PlaybookSet; got != "team@"+short(c1) {
		t.Fatalf("running %q", got)
	}
	f.start(t)

	// A valid change is picked up by polling.
	c2 := r.Push("v2", map[string]string{"playbooks/alerts.yaml": pb("crash", "v2")})
	testkit.Eventually(t, 30*time.Second, "commit 2 applied", func() bool { return f.store.Current().Version == "team@"+short(c2) })
	if fd := f.run(t); fd.Title != "v2" {
		t.Fatalf("title %q after v2", fd.Title)
	}

	// An invalid change is rejected with every error; v2 keeps running.
	c3 := r.Push("broken", map[string]string{"playbooks/alerts.yaml": badPB})
	testkit.Eventually(t, 30*time.Second, "commit 3 rejected", func() bool { return len(f.rejections()) == 1 })
	rej := f.rejections()[0]
	file := "team@" + short(c3) + ":playbooks/alerts.yaml"
	for _, want := range []string{file + `:5: unknown action "create_findin"`, file + `:7: unknown parameter "templte"`} {
		if !strings.Contains(rej.Errors.Error(), want) {
			t.Errorf("rejection lacks %q:\n%v", want, rej.Errors)
		}
	}
	if rej.Title() != "playbook commit "+short(c3)+" rejected" || rej.Running != "team@"+short(c2) {
		t.Errorf("rejection title %q running %q", rej.Title(), rej.Running)
	}
	if err := f.store.LastError(); err == nil || !strings.Contains(err.Error(), file+":5") {
		t.Errorf("LastError %v", err)
	}
	if fd := f.run(t); fd.Title != "v2" || fd.PlaybookSet != "team@"+short(c2) {
		t.Fatalf("after the bad push the finding came from %q (%q)", fd.PlaybookSet, fd.Title)
	}
	if got := testutil.ToFloat64(f.store.reloads.WithLabelValues("rejected")); got != 1 {
		t.Errorf("rejected reloads %v", got)
	}
	if got := testutil.ToFloat64(f.store.lastOK); got != 0 {
		t.Errorf("last_reload_successful %v", got)
	}

	// The fix is picked up.
	c4 := r.Push("fix", map[string]string{"playbooks/alerts.yaml": pb("crash", "v4")})
	testkit.Eventually(t, 30*time.Second, "commit 4 applied", func() bool { return f.store.Current().Version == "team@"+short(c4) })
	if fd := f.run(t); fd.Title != "v4" {
		t.Fatalf("title %q after the fix", fd.Title)
	}
	if f.store.LastError() != nil || len(f.rejections()) != 1 {
		t.Errorf("after the fix: last error %v, %d rejections", f.store.LastError(), len(f.rejections()))
	}
	if srv.AuthFailures.Load() != 0 {
		t.Errorf("%d requests failed authentication", srv.AuthFailures.Load())
	}
}

// TestGitRefreshOnDemand is what the webhook does: with polling off, a
// Refresh fetches and reloads.
func TestGitRefreshOnDemand(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "team")
	srv := gittest.ServeHTTP(t, r.Root, "")
	r.Push("v1", map[string]string{"a.yaml": pb("crash", "v1")})
	f := newGitFixture(t, t.TempDir(), GitRepoOptions{Name: "team", URL: srv.RepoURL("team"), Branch: "main"})
	if err := f.repos.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	c2 := r.Push("v2", map[string]string{"a.yaml": pb("crash", "v2")})
	for range 5 { // coalesced: any number of requests, at least one more round
		f.repos.Refresh()
	}
	testkit.Eventually(t, 30*time.Second, "commit 2 applied after Refresh", func() bool { return f.store.Current().Version == "team@"+short(c2) })
}

func TestGitTokenIsRequiredAndSent(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "team")
	srv := gittest.ServeHTTP(t, r.Root, "right")
	r.Push("v1", map[string]string{"a.yaml": pb("crash", "v1")})
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeFile(t, tokenFile, "wrong\n")

	g := NewGitSource(GitRepoOptions{Name: "team", URL: srv.RepoURL("team"), Auth: GitAuth{TokenFile: tokenFile}}, filepath.Join(t.TempDir(), "clone"))
	_, err := g.Fetch(context.Background())
	var fe *FetchError
	if !errors.As(err, &fe) || fe.Repo != "team" {
		t.Fatalf("want a FetchError with a wrong token, got %v", err)
	}
	if srv.AuthFailures.Load() == 0 {
		t.Fatal("the server saw no failed authentication")
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the token leaks into the error: %v", err)
	}
	writeFile(t, tokenFile, "right\n") // rotated: read at the next fetch
	if changed, err := g.Fetch(context.Background()); err != nil || !changed {
		t.Fatalf("fetch with the rotated token: changed=%v err=%v", changed, err)
	}
	if g.Status().LastFetchError != "" {
		t.Errorf("status keeps an old error: %+v", g.Status())
	}
}

// TestGitFetchFailureKeepsTheRunningSet: an unreachable server is not a bad
// commit; nothing is rejected and the running set stays.
func TestGitFetchFailureKeepsTheRunningSet(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "team")
	srv := gittest.ServeHTTP(t, r.Root, "")
	c1 := r.Push("v1", map[string]string{"a.yaml": pb("crash", "v1")})
	f := newGitFixture(t, t.TempDir(), GitRepoOptions{Name: "team", URL: srv.RepoURL("team"), Branch: "main"})
	if err := f.repos.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Down.Store(true)
	r.Push("v2", map[string]string{"a.yaml": pb("crash", "v2")})
	changed, err := f.repos.FetchAll(context.Background())
	if err == nil || changed {
		t.Fatalf("fetch from a down server: changed=%v err=%v", changed, err)
	}
	if _, err := f.store.Reload(context.Background()); err != nil {
		t.Fatalf("reload after a failed fetch: %v", err)
	}
	if f.store.Current().Version != "team@"+short(c1) || len(f.rejections()) != 0 {
		t.Fatalf("running %q, rejections %v", f.store.Current().Version, f.rejections())
	}
	if got := testutil.ToFloat64(f.repos.fetches.WithLabelValues("team", "failed")); got != 1 {
		t.Errorf("failed fetches %v", got)
	}
	if got := testutil.ToFloat64(f.repos.lastOK.WithLabelValues("team")); got != 0 {
		t.Errorf("last_fetch_successful %v", got)
	}
	if s := f.repos.Status()[0]; !strings.Contains(s.LastFetchError, "503") {
		t.Errorf("status %+v", s)
	}
	srv.Down.Store(false)
	if changed, err := f.repos.FetchAll(context.Background()); err != nil || !changed {
		t.Fatalf("fetch after the outage: changed=%v err=%v", changed, err)
	}
}

func TestGitUnknownBranchAndEmptyRepositoryAreFetchErrors(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "team")
	g := NewGitSource(GitRepoOptions{Name: "team", URL: r.FileURL()}, filepath.Join(t.TempDir(), "clone"))
	if _, err := g.Fetch(context.Background()); err == nil {
		t.Fatal("fetching an empty repository worked")
	}
	r.Push("v1", map[string]string{"a.yaml": pb("crash", "v1")})
	g = NewGitSource(GitRepoOptions{Name: "team", URL: r.FileURL(), Branch: "release"}, filepath.Join(t.TempDir(), "clone"))
	_, err := g.Fetch(context.Background())
	var fe *FetchError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), `branch "release"`) {
		t.Fatalf("want a FetchError naming the branch, got %v", err)
	}
}

// TestGitFileURLToAWorkingCopy: a file:// URL (or a bare path) may name a
// repository with a work tree, as git itself accepts; it used to fail with
// "the repository is empty" because go-git's file server opened the work
// tree as the object store.
func TestGitFileURLToAWorkingCopy(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "team")
	c1 := r.Push("v1", map[string]string{"playbooks/a.yaml": pb("crash", "v1")})
	tests := []struct {
		name, url string
	}{
		{"file URL", r.WorkFileURL()},
		{"plain path", strings.TrimPrefix(r.WorkFileURL(), "file://")},
		{"bare repository still works", r.FileURL()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewGitSource(GitRepoOptions{Name: "team", URL: tt.url, Branch: "main", Path: "playbooks"}, filepath.Join(t.TempDir(), "clone"))
			changed, err := g.Fetch(context.Background())
			if err != nil || !changed {
				t.Fatalf("fetch %s: changed=%v err=%v", tt.url, changed, err)
			}
			if got := g.Status().Commit; got != c1 {
				t.Errorf("commit %q, want %q", got, c1)
			}
		})
	}
}

// TestGitMissingFolderIsRejected: a commit that removes the playbook folder
// is a bad commit, not an empty set.
func TestGitMissingFolderIsRejected(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "team")
	c1 := r.Push("v1", map[string]string{"playbooks/a.yaml": pb("crash", "v1")})
	f := newGitFixture(t, t.TempDir(), GitRepoOptions{Name: "team", URL: r.FileURL(), Path: "playbooks"})
	if err := f.repos.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	c2 := r.Push("moved", map[string]string{"playbooks/a.yaml": "", "pb/a.yaml": pb("crash", "v2")})
	if _, err := f.repos.FetchAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := f.store.Reload(context.Background())
	want := "team@" + short(c2) + `:playbooks: the playbook folder "playbooks" (playbook_repos path) does not exist in this commit`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("want %q, got %v", want, err)
	}
	if f.store.Current().Version != "team@"+short(c1) {
		t.Fatalf("running %q", f.store.Current().Version)
	}
	if rs := f.rejections(); len(rs) != 1 || rs[0].Title() != "playbook commit "+short(c2)+" rejected" {
		t.Fatalf("rejections %+v", rs)
	}
}

// TestGitReposMergeAndDuplicatesNameBothPlaces: several repositories make
// one set; one playbook name in two of them is an error naming both.
func TestGitReposMergeAndDuplicatesNameBothPlaces(t *testing.T) {
	t.Parallel()
	a, b := gittest.NewRemote(t, "alpha"), gittest.NewRemote(t, "beta")
	ca := a.Push("a", map[string]string{"a.yaml": pb("crash", "alpha")})
	cb := b.Push("b", map[string]string{"b.yaml": pb("nodes", "beta")})
	f := newGitFixture(t, t.TempDir(),
		GitRepoOptions{Name: "alpha", URL: a.FileURL()},
		GitRepoOptions{Name: "beta", URL: b.FileURL()})
	if err := f.repos.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := f.store.Current().Version; v != "alpha@"+short(ca)+"+beta@"+short(cb) {
		t.Fatalf("version %q", v)
	}
	if names := f.store.Current().Names(); strings.Join(names, ",") != "crash,nodes" {
		t.Fatalf("names %v", names)
	}

	cb2 := b.Push("dup", map[string]string{"b.yaml": pb("nodes", "beta") + pb("crash", "beta")})
	if _, err := f.repos.FetchAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := f.store.Reload(context.Background())
	want := fmt.Sprintf(`beta@%s:b.yaml:7: playbook name "crash" is already used at alpha@%s:a.yaml:1`, short(cb2), short(ca))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("want %q, got %v", want, err)
	}
	if rs := f.rejections(); len(rs) != 1 || rs[0].Title() != "playbook commit "+short(cb2)+" rejected" {
		t.Fatalf("rejections %+v", rs)
	}
}

// TestGitRestartReusesTheCloneAndFallsBackToTheAppliedCommit: the clone
// survives a restart; when its newest commit is invalid and there is no
// running set yet, the commit that ran before the restart is used.
func TestGitRestartReusesTheCloneAndFallsBackToTheAppliedCommit(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "team")
	srv := gittest.ServeHTTP(t, r.Root, "")
	cache := t.TempDir()
	opts := GitRepoOptions{Name: "team", URL: srv.RepoURL("team")}
	c1 := r.Push("v1", map[string]string{"a.yaml": pb("crash", "v1")})

	first := newGitFixture(t, cache, opts)
	if err := first.repos.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := first.store.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	c2 := r.Push("broken", map[string]string{"a.yaml": badPB})
	if _, err := first.repos.FetchAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := first.store.Reload(context.Background()); err == nil {
		t.Fatal("bad commit applied")
	}

	// Restart with the server down: the clone's newest commit (the bad one)
	// is refused, and medic starts with the applied one.
	srv.Down.Store(true)
	second := newGitFixture(t, cache, opts)
	if err := second.repos.Init(context.Background()); err != nil {
		t.Fatalf("start with a clone and no server: %v", err)
	}
	if got := second.repos.Status()[0].Commit; got != c2 {
		t.Fatalf("clone's commit %s, want the fetched %s", got, c2)
	}
	if _, err := second.store.Reload(context.Background()); err == nil {
		t.Fatal("bad commit applied after the restart")
	}
	if !second.repos.FallBackToApplied() {
		t.Fatal("no applied commit to fall back to")
	}
	if _, err := second.store.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := second.store.Current().Version; v != "team@"+short(c1) {
		t.Fatalf("started with %q, want the applied commit", v)
	}

	// Without a clone and without a server, Init fails: medic would
	// otherwise run without the team's playbooks.
	third := newGitFixture(t, t.TempDir(), opts)
	if err := third.repos.Init(context.Background()); err == nil {
		t.Fatal("Init with neither clone nor server worked")
	}
}

// TestGitReloadDuringEventsEachEventOneSet: events flow while commits that
// flip between two playbook sets are fetched and applied; every finding
// comes wholly from one set, the one it names. Run with -race.
func TestGitReloadDuringEventsEachEventOneSet(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "team")
	content := func(mark string) map[string]string {
		var b strings.Builder
		for i := range 4 {
			fmt.Fprintf(&b, "- name: p%d\n  triggers: [on_prometheus_alert]\n  actions:\n    - create_finding: {title: %s}\n    - template_enricher: {template: %s}\n", i, mark, mark)
		}
		return map[string]string{"a.yaml": b.String()}
	}
	commits := map[string]string{} // short commit → mark
	c := r.Push("A", content("A"))
	commits[short(c)] = "A"
	f := newGitFixture(t, t.TempDir(), GitRepoOptions{Name: "team", URL: r.FileURL()})
	if err := f.repos.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	var pushed []string
	for i := range 6 {
		mark := []string{"B", "A"}[i%2]
		c := r.Push(mark, content(mark))
		commits[short(c)] = mark
		pushed = append(pushed, c)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				fd := f.run(t)
				mark := commits[strings.TrimPrefix(fd.PlaybookSet, "team@")]
				if mark == "" {
					t.Errorf("finding names an unknown set %q", fd.PlaybookSet)
					return
				}
				if fd.Title != mark || len(fd.Playbooks) != 4 || len(fd.Enrichments) != 4 {
					t.Errorf("finding of set %s (%s) has title %q, %d playbooks, %d enrichments", fd.PlaybookSet, mark, fd.Title, len(fd.Playbooks), len(fd.Enrichments))
					return
				}
				for _, e := range fd.Enrichments {
					if e.Blocks[0].Markdown != mark {
						t.Errorf("finding of set %s mixes in %q", fd.PlaybookSet, e.Blocks[0].Markdown)
						return
					}
				}
				for _, s := range fd.PlaybookSources {
					if s.Repo != "team" || short(s.Commit) != strings.TrimPrefix(fd.PlaybookSet, "team@") {
						t.Errorf("playbook source %+v does not match the set %s", s, fd.PlaybookSet)
						return
					}
				}
				mu.Lock()
				seen[fd.PlaybookSet]++
				mu.Unlock()
			}
		})
	}
	// Walk the repository's history: each commit is fetched (the remote
	// branch is moved back and forth), validated and swapped in while the
	// workers run; each set is seen by at least one event before the next.
	for range 3 {
		for _, c := range pushed {
			r.Git(r.Bare, "update-ref", "refs/heads/main", c)
			if _, err := f.repos.FetchAll(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := f.store.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			version := "team@" + short(c)
			testkit.Eventually(t, 30*time.Second, "an event handled by "+version, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return seen[version] > 0 || t.Failed()
			})
			mu.Lock()
			delete(seen, version)
			mu.Unlock()
		}
	}
	close(stop)
	wg.Wait()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestGitOverSSHChecksTheHostKey: a deploy key over SSH, with the server
// checked against known_hosts; a server with another key is refused, and
// checking is off only when asked for explicitly.
func TestGitOverSSHChecksTheHostKey(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "team")
	c1 := r.Push("v1", map[string]string{"a.yaml": pb("crash", "v1")})
	srv := gittest.ServeSSH(t)
	opts := GitRepoOptions{Name: "team", URL: srv.URL(r.Bare), Auth: GitAuth{SSHKeyFile: srv.ClientKeyFile, KnownHostsFile: srv.KnownHosts}}

	g := NewGitSource(opts, filepath.Join(t.TempDir(), "clone"))
	if changed, err := g.Fetch(context.Background()); err != nil || !changed {
		t.Fatalf("fetch over SSH: changed=%v err=%v", changed, err)
	}
	if g.Status().Commit != c1 {
		t.Fatalf("commit %s, want %s", g.Status().Commit, c1)
	}

	opts.Auth.KnownHostsFile = srv.WrongKnownHosts
	g = NewGitSource(opts, filepath.Join(t.TempDir(), "clone"))
	_, err := g.Fetch(context.Background())
	var fe *FetchError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "knownhosts: key mismatch") {
		t.Fatalf("a server with another host key was accepted: %v", err)
	}
	t.Logf("refused as it should be: %v", err)

	opts.Auth.KnownHostsFile = ""
	g = NewGitSource(opts, filepath.Join(t.TempDir(), "clone"))
	if _, err := g.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "known_hosts_file") {
		t.Fatalf("no known_hosts and no explicit opt-out: %v", err)
	}
	opts.Auth.InsecureIgnoreHostKey = true
	g = NewGitSource(opts, filepath.Join(t.TempDir(), "clone"))
	if _, err := g.Fetch(context.Background()); err != nil {
		t.Fatalf("insecure_ignore_host_key: %v", err)
	}

	opts.Auth = GitAuth{SSHKeyFile: filepath.Join(t.TempDir(), "missing"), KnownHostsFile: srv.KnownHosts}
	g = NewGitSource(opts, filepath.Join(t.TempDir(), "clone"))
	if _, err := g.Fetch(context.Background()); err == nil {
		t.Fatal("fetch without the deploy key worked")
	}
}
