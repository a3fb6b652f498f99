package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/gittest"
	"github.com/medichq/medic/internal/testkit"
)

// repoMedic is a medic following one playbook repository, "team", served
// over smart HTTP (no token), with the built-in playbooks.
type repoMedic struct {
	app  *App
	url  string
	logs *testkit.SyncBuffer
}

func startRepoMedic(t *testing.T, dataDir, repoURL string) *repoMedic {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "medic.yaml")
	cfgText := fmt.Sprintf(`
data_dir: %[1]s
http: {addr: "127.0.0.1:0"}
playbooks:
  dirs: []
  builtin: true
  reload_interval: 200ms         # also how often a degraded repository is fetched again
playbook_repos:
  - name: team
    url: %[2]s
    path: playbooks
    poll_interval: 0s            # webhook only: the retry while degraded is medic's own
sinks:
  - {name: findings, type: file, path: %[1]s/findings.jsonl}
`, dataDir, repoURL)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.SyncBuffer{}
	a, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("medic did not start: %v\n%s", err, logs.String())
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := &repoMedic{app: a, url: "http://" + a.Addr(), logs: logs}
	t.Cleanup(m.stop)
	return m
}

func (m *repoMedic) stop() {
	if m.app == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = m.app.Shutdown(ctx)
	m.app = nil
}

func (m *repoMedic) version() string { return m.app.store.Current().Version }

// repoCheck returns /readyz's status and its line for the repository.
func (m *repoMedic) repoCheck(t *testing.T) (int, string) {
	t.Helper()
	code, body := get(t, m.url+"/readyz")
	var checks map[string]string
	if err := json.Unmarshal([]byte(body), &checks); err != nil {
		t.Fatalf("/readyz answered %q: %v", body, err)
	}
	check, ok := checks["playbook_repo team"]
	if !ok {
		t.Fatalf("/readyz does not mention the repository: %s", body)
	}
	return code, check
}

func (m *repoMedic) readyMetric(t *testing.T) string {
	t.Helper()
	_, metrics := get(t, m.url+"/metrics")
	for line := range strings.SplitSeq(metrics, "\n") {
		if strings.HasPrefix(line, `medic_playbook_repo_ready{repo="team"}`) {
			return strings.TrimSpace(strings.TrimPrefix(line, `medic_playbook_repo_ready{repo="team"}`))
		}
	}
	t.Fatal("no medic_playbook_repo_ready for team")
	return ""
}

// TestUnreachableRepoAtFirstStartRunsDegraded: the repository cannot be
// reached on medic's very first start (no clone): medic starts with the
// built-in playbooks instead of failing, ready, and says it is degraded;
// once the server is back, the repository's commit is fetched and runs
// without a webhook or a restart, and degraded is cleared.
func TestUnreachableRepoAtFirstStartRunsDegraded(t *testing.T) {
	t.Parallel()
	remote := gittest.NewRemote(t, "team")
	srv := gittest.ServeHTTP(t, remote.Root, "")
	c1 := remote.Push("v1", map[string]string{"playbooks/crash.yaml": crashPlaybook("v1")})
	srv.Down.Store(true)

	m := startRepoMedic(t, t.TempDir(), srv.RepoURL("team"))
	if v := m.version(); strings.Contains(v, "team@") {
		t.Fatalf("started with %q while the repository was unreachable", v)
	}
	code, check := m.repoCheck(t)
	if code != http.StatusOK || !strings.Contains(check, "degraded") || !strings.Contains(check, "fetch failing since") ||
		!strings.Contains(check, "never fetched") {
		t.Fatalf("/readyz while unreachable: %d %s", code, check)
	}
	t.Logf("/readyz %d, playbook_repo team: %s", code, check)
	if got := m.readyMetric(t); got != "0" {
		t.Fatalf("medic_playbook_repo_ready = %s while unreachable, want 0", got)
	}
	if !strings.Contains(m.logs.String(), "degraded") {
		t.Fatalf("no log line says degraded:\n%s", m.logs.String())
	}

	srv.Down.Store(false)
	testkit.Eventually(t, 30*time.Second, "the repository's commit runs once it is reachable", func() bool { return strings.Contains(m.version(), "team@"+c1[:7]) })
	testkit.Eventually(t, 30*time.Second, "degraded cleared", func() bool {
		code, check := m.repoCheck(t)
		return code == http.StatusOK && strings.Contains(check, "ok "+c1[:7]) && m.readyMetric(t) == "1"
	})
	testkit.Eventually(t, 30*time.Second, "the recovery logged", func() bool { return strings.Contains(m.logs.String(), "no longer degraded") })
}

// TestUnreachableRepoStartsFromTheKeptClone: a medic that ran with the
// repository before restarts while it is unreachable: it runs the commit of
// the clone kept in its data folder, ready, degraded said, and clears it
// once the server answers again.
func TestUnreachableRepoStartsFromTheKeptClone(t *testing.T) {
	t.Parallel()
	remote := gittest.NewRemote(t, "team")
	srv := gittest.ServeHTTP(t, remote.Root, "")
	c1 := remote.Push("v1", map[string]string{"playbooks/crash.yaml": crashPlaybook("v1")})
	dataDir := t.TempDir()

	first := startRepoMedic(t, dataDir, srv.RepoURL("team"))
	if !strings.Contains(first.version(), "team@"+c1[:7]) {
		t.Fatalf("first start: %q", first.version())
	}
	first.stop()

	srv.Down.Store(true)
	m := startRepoMedic(t, dataDir, srv.RepoURL("team"))
	if !strings.Contains(m.version(), "team@"+c1[:7]) {
		t.Fatalf("restart while unreachable runs %q, want the kept commit %s", m.version(), c1[:7])
	}
	code, check := m.repoCheck(t)
	if code != http.StatusOK || !strings.Contains(check, "degraded") || !strings.Contains(check, "serving commit "+c1[:7]) {
		t.Fatalf("/readyz while unreachable: %d %s", code, check)
	}
	t.Logf("/readyz %d, playbook_repo team: %s", code, check)
	if got := m.readyMetric(t); got != "0" {
		t.Fatalf("medic_playbook_repo_ready = %s while unreachable, want 0", got)
	}
	srv.Down.Store(false)
	testkit.Eventually(t, 30*time.Second, "degraded cleared", func() bool {
		code, check := m.repoCheck(t)
		return code == http.StatusOK && strings.Contains(check, "ok "+c1[:7]) && m.readyMetric(t) == "1"
	})
}

// TestBrokenHeadAtFirstStartRunsWithoutIt: the repository's newest commit
// is invalid on medic's first start, with no earlier commit to fall back
// on: medic starts with the built-in playbooks, degraded said, and takes
// the next, fixed commit by itself.
func TestBrokenHeadAtFirstStartRunsWithoutIt(t *testing.T) {
	t.Parallel()
	remote := gittest.NewRemote(t, "team")
	srv := gittest.ServeHTTP(t, remote.Root, "")
	bad := remote.Push("broken", map[string]string{"playbooks/crash.yaml": badPlaybook})

	m := startRepoMedic(t, t.TempDir(), srv.RepoURL("team"))
	if v := m.version(); strings.Contains(v, "team@") {
		t.Fatalf("started with %q, which holds the rejected commit", v)
	}
	code, check := m.repoCheck(t)
	if code != http.StatusOK || !strings.Contains(check, "degraded") || !strings.Contains(check, bad[:7]+" was rejected at start-up") {
		t.Fatalf("/readyz with a broken HEAD: %d %s", code, check)
	}
	t.Logf("/readyz %d, playbook_repo team: %s", code, check)
	if got := m.readyMetric(t); got != "0" {
		t.Fatalf("medic_playbook_repo_ready = %s with a broken HEAD, want 0", got)
	}

	fixed := remote.Push("fix", map[string]string{"playbooks/crash.yaml": crashPlaybook("fixed")})
	testkit.Eventually(t, 30*time.Second, "the fixed commit runs", func() bool { return strings.Contains(m.version(), "team@"+fixed[:7]) })
	testkit.Eventually(t, 30*time.Second, "degraded cleared", func() bool {
		code, check := m.repoCheck(t)
		return code == http.StatusOK && strings.Contains(check, "ok "+fixed[:7]) && m.readyMetric(t) == "1"
	})
}
