package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/gittest"
	_ "github.com/medichq/medic/internal/plugins"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/sinks/file/filetest"
)

const hookSecret = "hook-secret"

func crashPlaybook(title string) string {
	return fmt.Sprintf(`- name: crash
  triggers:
    - on_prometheus_alert: {alert_name: KubePodCrashLooping}
  actions:
    - create_finding:
        title: %q
`, title)
}

// badPlaybook has an unknown parameter on line 6.
const badPlaybook = `- name: crash
  triggers:
    - on_prometheus_alert: {alert_name: KubePodCrashLooping}
  actions:
    - create_finding:
        titel: oops
`

type record = filetest.Record

func readFindings(t *testing.T, path string) []record {
	t.Helper()
	return filetest.ReadSoFar(t, path)
}

func post(t *testing.T, url string, body []byte, header http.Header) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json") // the intake reads nothing else
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func alertBody(pod string) []byte {
	return fmt.Appendf(nil, `{"version":"4","status":"firing","receiver":"medic","groupKey":"{}:{}","externalURL":"http://am",
"alerts":[{"status":"firing","labels":{"alertname":"KubePodCrashLooping","namespace":"shop","pod":%q,"severity":"warning"},
"annotations":{},"startsAt":"2026-11-22T10:00:00Z","endsAt":"0001-01-01T00:00:00Z"}]}`, pod)
}

// TestPlaybooksFromGitEndToEnd runs medic with a playbook repository served
// over smart HTTP: webhook pushes from GitHub, Gitea and GitLab, a rejected
// commit reported to the admin sink while the old set keeps running and
// /readyz stays ready, and findings that name the commit they ran under.
func TestPlaybooksFromGitEndToEnd(t *testing.T) {
	remote := gittest.NewRemote(t, "team")
	srv := gittest.ServeHTTP(t, remote.Root, "git-token")
	c1 := remote.Push("v1", map[string]string{"playbooks/crash.yaml": crashPlaybook("v1")})

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "git-token")
	if err := os.WriteFile(tokenFile, []byte("git-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "medic.yaml")
	cfgText := fmt.Sprintf(`
data_dir: %[1]s/data
http: {addr: "127.0.0.1:0"}
playbooks:
  dirs: []
  builtin: false
  reload_interval: 0s
  admin_sink: admins
  webhook_secret: %[2]s
playbook_repos:
  - name: team
    url: %[3]s
    path: playbooks
    poll_interval: 0s            # webhook only, so each step is caused by a webhook
    auth: {token_file: %[4]s}
sinks:
  - {name: findings, type: file, path: %[1]s/findings.jsonl}
  - {name: admins, type: file, path: %[1]s/admins.jsonl, default: false}
`, dir, hookSecret, srv.RepoURL("team"), tokenFile)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Bus.Backoff = []time.Duration{50 * time.Millisecond}
	logs := &testkit.SyncBuffer{}
	a, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	url := "http://" + a.Addr()
	version := func() string { return a.store.Current().Version }
	if version() != "team@"+c1[:7] {
		t.Fatalf("started with %q", version())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "playbook-repos", "team", "config")); err != nil {
		t.Fatalf("clone not under <data_dir>/playbook-repos/team: %v", err)
	}

	// A push announced by GitHub is picked up.
	c2 := remote.Push("v2", map[string]string{"playbooks/crash.yaml": crashPlaybook("v2")})
	push := []byte(`{"ref":"refs/heads/main","repository":{"full_name":"acme/team"}}`)
	status, body := post(t, url+"/api/playbooks/webhook", push, http.Header{
		"X-Github-Event": {"push"}, "X-Hub-Signature-256": {"sha256=" + playbooks.SignWebhook(push, hookSecret)}})
	if status != http.StatusAccepted {
		t.Fatalf("GitHub webhook: %d %v", status, body)
	}
	testkit.Eventually(t, 30*time.Second, "v2 applied after the GitHub webhook", func() bool { return version() == "team@"+c2[:7] })

	// A finding records the set and the commit of each playbook.
	if status, body := post(t, url+"/api/alerts", alertBody("cart-1"), nil); status != http.StatusOK {
		t.Fatalf("alert: %d %v", status, body)
	}
	var got event.Finding
	testkit.Eventually(t, 30*time.Second, "finding for cart-1", func() bool {
		for _, r := range readFindings(t, filepath.Join(dir, "findings.jsonl")) {
			if r.Finding.Event.Labels["pod"] == "cart-1" {
				got = r.Finding
				return true
			}
		}
		return false
	})
	wantSrc := event.PlaybookSource{Playbook: "crash", Location: "team@" + c2[:7] + ":playbooks/crash.yaml:1", Repo: "team", Commit: c2}
	if got.Title != "v2" || got.PlaybookSet != "team@"+c2[:7] || len(got.PlaybookSources) != 1 || got.PlaybookSources[0] != wantSrc {
		t.Fatalf("finding: title %q set %q sources %+v", got.Title, got.PlaybookSet, got.PlaybookSources)
	}

	// A bad push announced by Gitea is rejected: the admin sink hears of it,
	// v2 keeps running, /readyz stays 200, a metric and a log line say so.
	c3 := remote.Push("broken", map[string]string{"playbooks/crash.yaml": badPlaybook})
	status, body = post(t, url+"/api/playbooks/webhook", push, http.Header{
		"X-Gitea-Event": {"push"}, "X-Gitea-Signature": {playbooks.SignWebhook(push, hookSecret)}})
	if status != http.StatusAccepted {
		t.Fatalf("Gitea webhook: %d %v", status, body)
	}
	var admin event.Finding
	testkit.Eventually(t, 30*time.Second, "rejection finding in the admin sink", func() bool {
		recs := readFindings(t, filepath.Join(dir, "admins.jsonl"))
		if len(recs) > 0 {
			admin = recs[0].Finding
		}
		return len(recs) > 0
	})
	errLine := "team@" + c3[:7] + `:playbooks/crash.yaml:6: unknown parameter "titel"`
	if admin.Title != "playbook commit "+c3[:7]+" rejected" || !strings.Contains(admin.Description, errLine) ||
		admin.Severity != event.SeverityWarning || admin.Event.Kind != KindPlaybookRejected || admin.Event.Labels["commit"] != c3 {
		t.Fatalf("admin finding: %+v", admin)
	}
	if version() != "team@"+c2[:7] {
		t.Fatalf("running %q after the bad push", version())
	}
	code, ready := get(t, url+"/readyz")
	if code != http.StatusOK || !strings.Contains(ready, "newest content rejected") || !strings.Contains(ready, "team@"+c3[:7]+":playbooks/crash.yaml:6") {
		t.Fatalf("/readyz %d %s", code, ready)
	}
	_, metrics := get(t, url+"/metrics")
	for _, want := range []string{`medic_playbooks_reloads_total{result="rejected"} 1`, "medic_playbooks_last_reload_successful 0",
		`medic_playbook_repo_fetches_total{repo="team",result="new_commit"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(logs.String(), "playbooks rejected; the last good set keeps running") || !strings.Contains(logs.String(), "crash.yaml:6") {
		t.Errorf("no log line names the rejection:\n%s", logs.String())
	}
	// The explicit reload answers 422 with the errors; the old set runs.
	status, body = post(t, url+"/api/playbooks/reload", nil, nil)
	if status != http.StatusUnprocessableEntity || !strings.Contains(fmt.Sprint(body["error"]), errLine) || body["version"] != "team@"+c2[:7] {
		t.Fatalf("reload: %d %v", status, body)
	}
	// Events still run under v2.
	post(t, url+"/api/alerts", alertBody("cart-2"), nil)
	testkit.Eventually(t, 30*time.Second, "finding for cart-2 under v2", func() bool {
		for _, r := range readFindings(t, filepath.Join(dir, "findings.jsonl")) {
			if r.Finding.Event.Labels["pod"] == "cart-2" {
				if r.Finding.Title != "v2" {
					t.Fatalf("cart-2 ran under %q", r.Finding.PlaybookSet)
				}
				return true
			}
		}
		return false
	})

	// A fix announced by GitLab is picked up.
	c4 := remote.Push("fix", map[string]string{"playbooks/crash.yaml": crashPlaybook("v4")})
	status, body = post(t, url+"/api/playbooks/webhook", push, http.Header{"X-Gitlab-Event": {"Push Hook"}, "X-Gitlab-Token": {hookSecret}})
	if status != http.StatusAccepted {
		t.Fatalf("GitLab webhook: %d %v", status, body)
	}
	testkit.Eventually(t, 30*time.Second, "v4 applied after the GitLab webhook", func() bool { return version() == "team@"+c4[:7] })
	if code, ready := get(t, url+"/readyz"); code != http.StatusOK || strings.Contains(ready, "rejected") {
		t.Fatalf("/readyz after the fix: %d %s", code, ready)
	}

	// Refused webhooks.
	status, _ = post(t, url+"/api/playbooks/webhook", push, http.Header{
		"X-Github-Event": {"push"}, "X-Hub-Signature-256": {"sha256=" + playbooks.SignWebhook(push, "guess")}})
	if status != http.StatusUnauthorized {
		t.Errorf("wrong signature: %d", status)
	}
	status, _ = post(t, url+"/api/playbooks/webhook", push, http.Header{"X-Github-Event": {"push"}})
	if status != http.StatusUnauthorized {
		t.Errorf("unsigned: %d", status)
	}
	other := []byte(`{"ref":"refs/heads/feature"}`)
	status, body = post(t, url+"/api/playbooks/webhook", other, http.Header{
		"X-Github-Event": {"push"}, "X-Hub-Signature-256": {"sha256=" + playbooks.SignWebhook(other, hookSecret)}})
	if status != http.StatusOK || !strings.Contains(fmt.Sprint(body["ignored"]), "feature") {
		t.Errorf("push to another branch: %d %v", status, body)
	}
	ping := []byte(`{"zen":"hi"}`)
	status, body = post(t, url+"/api/playbooks/webhook", ping, http.Header{
		"X-Github-Event": {"ping"}, "X-Hub-Signature-256": {"sha256=" + playbooks.SignWebhook(ping, hookSecret)}})
	if status != http.StatusOK || body["pong"] != true {
		t.Errorf("ping: %d %v", status, body)
	}
	// The admin sink got exactly one finding, and no alert.
	if recs := readFindings(t, filepath.Join(dir, "admins.jsonl")); len(recs) != 1 {
		t.Errorf("admin sink has %d findings", len(recs))
	}
	if srv.AuthFailures.Load() != 0 {
		t.Errorf("%d Git requests failed authentication", srv.AuthFailures.Load())
	}

	// An outage of the Git server: a reload keeps the set and says why.
	srv.Down.Store(true)
	status, body = post(t, url+"/api/playbooks/reload", nil, nil)
	if status != http.StatusOK || body["fetch_errors"] == nil || body["version"] != "team@"+c4[:7] {
		t.Fatalf("reload during an outage: %d %v", status, body)
	}
	if code, ready := get(t, url+"/readyz"); code != http.StatusOK || !strings.Contains(ready, "fetch failing") {
		t.Fatalf("/readyz during an outage: %d %s", code, ready)
	}
}

func TestPlaybookWebhookOffWithoutSecret(t *testing.T) {
	cfg := config.Default()
	a := &App{cfg: cfg, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rec := httptest.NewRecorder()
	a.playbookWebhook(rec, httptest.NewRequest(http.MethodPost, "/api/playbooks/webhook", strings.NewReader("{}")))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "playbooks.webhook_secret") {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
}

func TestRejectionFinding(t *testing.T) {
	rej := playbooks.Rejection{
		Hash:    "abc",
		Version: "local:sha256:000000000000+team@1234567",
		Sources: []playbooks.Origin{{Repo: "team", Commit: "1234567890abcdef"}},
		Errors: playbooks.Errors{
			{File: "team@1234567:a.yaml", Line: 3, Msg: "unknown action \"x\""},
			{File: "config", Msg: "playbooks.disabled names \"y\""},
		},
		Running: "team@7654321",
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	f := RejectionFinding(rej, now)
	if f.Title != "playbook commit 1234567 rejected" || f.Severity != event.SeverityWarning || f.Event.Source != "medic" {
		t.Fatalf("finding %+v", f)
	}
	for _, want := range []string{"team@1234567:a.yaml:3: unknown action", "config: playbooks.disabled", "(team@7654321) keeps running"} {
		if !strings.Contains(f.Description, want) {
			t.Errorf("description lacks %q:\n%s", want, f.Description)
		}
	}
	if again := RejectionFinding(rej, now.Add(time.Hour)); again.ID != f.ID {
		t.Error("the same rejection got another ID")
	}
}
