package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/playbooks"
)

// maxWebhookBody bounds a push webhook's body (GitHub's own limit).
const maxWebhookBody = 25 << 20

// KindPlaybookRejected is the event kind of the finding sent to
// playbooks.admin_sink when a playbook commit is refused.
const KindPlaybookRejected event.Kind = "playbook_rejected"

// gitPlaybooks is the App's side of playbooks committed to Git: the
// repositories, and the rejections already reported to the admin sink.
type gitPlaybooks struct {
	repos *playbooks.Repos

	mu       sync.Mutex
	notified map[string]bool // rejected content hashes already sent to the admin sink
}

// RepoOptions turns the configuration of playbook_repos into the options of
// the playbooks package.
func RepoOptions(repos []config.PlaybookRepo) []playbooks.GitRepoOptions {
	out := make([]playbooks.GitRepoOptions, len(repos))
	for i, r := range repos {
		out[i] = playbooks.GitRepoOptions{
			Name: r.Name, URL: r.URL, Branch: r.Branch, Path: r.Path, PollInterval: r.PollInterval,
			Auth: playbooks.GitAuth{
				Username:              r.Auth.Username,
				TokenEnv:              r.Auth.TokenEnv,
				TokenFile:             r.Auth.TokenFile,
				SSHKeyFile:            r.Auth.SSHKeyFile,
				SSHKeyPassphraseEnv:   r.Auth.SSHKeyPassphraseEnv,
				KnownHostsFile:        r.Auth.KnownHostsFile,
				InsecureIgnoreHostKey: r.Auth.InsecureIgnoreHostKey,
			},
		}
	}
	return out
}

// initPlaybookRepos fetches every playbook repository (clones are kept
// under <data_dir>/playbook-repos and reused after a restart).
func (a *App) initPlaybookRepos(ctx context.Context) error {
	a.git.notified = map[string]bool{}
	repos, err := playbooks.NewRepos(RepoOptions(a.cfg.PlaybookRepos), filepath.Join(a.cfg.DataDir, "playbook-repos"),
		a.logger.With("component", "playbook-repos"), a.registry)
	if err != nil {
		return err
	}
	a.git.repos = repos
	for _, r := range a.cfg.PlaybookRepos {
		if r.Auth.InsecureIgnoreHostKey {
			a.logger.Warn("playbook repository: SSH host key checking is OFF (auth.insecure_ignore_host_key); set auth.known_hosts_file",
				"repo", r.Name, "url", r.URL)
		}
	}
	if len(a.cfg.PlaybookRepos) == 0 {
		return nil
	}
	if err := repos.Init(ctx); err != nil {
		return fmt.Errorf("playbook_repos: %w", err)
	}
	for _, s := range repos.Status() {
		a.logger.Info("following playbook repository", "repo", s.Name, "url", s.URL, "branch", s.Branch, "commit", s.Commit)
	}
	return nil
}

// withPlaybookRepos adds the repositories' files to the local source.
func (a *App) withPlaybookRepos(local playbooks.Source) playbooks.Source {
	return func(ctx context.Context) ([]playbooks.File, error) {
		files, err := local(ctx)
		if err != nil {
			return nil, err
		}
		gitFiles, err := a.git.repos.Files()
		return append(files, gitFiles...), err
	}
}

// loadPlaybooks loads the first set. When the newest commits are refused at
// start-up and the clones remember the commits that ran before the restart,
// medic starts with those (and says so) rather than not at all.
func (a *App) loadPlaybooks(ctx context.Context) error {
	a.store.OnReject(a.notifyRejected)
	a.store.OnApply(a.git.repos.MarkApplied)
	_, err := a.store.Reload(ctx)
	if err == nil {
		return nil
	}
	var perrs playbooks.Errors
	if !errors.As(err, &perrs) || !a.git.repos.FallBackToApplied() {
		return err
	}
	if _, ferr := a.store.Reload(ctx); ferr != nil {
		return err
	}
	a.logger.Warn("the newest playbook commits were rejected; started with the commits that ran before the restart",
		"version", a.store.Current().Version)
	return nil
}

// startPlaybookRepos polls the repositories and serves webhook refreshes.
func (a *App) startPlaybookRepos(ctx context.Context) {
	a.wg.Go(func() {
		a.git.repos.Run(ctx, func(ctx context.Context) { _, _ = a.store.Reload(ctx) })
	})
}

// refreshPlaybookRepos fetches every repository now (reload endpoint, SIGHUP).
func (a *App) refreshPlaybookRepos(ctx context.Context) {
	_, _ = a.git.repos.FetchAll(ctx) // logged and counted; the running set stays on failure
}

// playbookFetchErrors lists the repositories whose last fetch failed.
func (a *App) playbookFetchErrors() map[string]string {
	var out map[string]string
	for _, s := range a.git.repos.Status() {
		if s.LastFetchError != "" {
			if out == nil {
				out = map[string]string{}
			}
			out[s.Name] = s.LastFetchError
		}
	}
	return out
}

// playbookRepoChecks adds each repository to /readyz's body. A repository
// that cannot be fetched does not make medic unready: the last good set runs.
func (a *App) playbookRepoChecks(checks map[string]string) {
	for _, s := range a.git.repos.Status() {
		key := "playbook_repo " + s.Name
		commit := s.Commit
		if len(commit) > 7 {
			commit = commit[:7]
		}
		if s.LastFetchError != "" {
			checks[key] = fmt.Sprintf("fetch failing (keeping %s): %s", commit, s.LastFetchError)
		} else {
			checks[key] = "ok " + commit
		}
	}
}

// notifyRejected sends the admin sink a finding about refused content, once
// per content. It runs under the store's reload lock, so the publish runs
// in the background.
func (a *App) notifyRejected(rej playbooks.Rejection) {
	sink := a.cfg.Playbooks.AdminSink
	if sink == "" {
		return
	}
	a.git.mu.Lock()
	seen := a.git.notified[rej.Hash]
	a.git.notified[rej.Hash] = true
	a.git.mu.Unlock()
	if seen {
		return
	}
	f := RejectionFinding(rej, time.Now())
	a.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.bus.PublishFinding(ctx, sink, f); err != nil {
			a.logger.Error("cannot send the playbook rejection to the admin sink", "sink", sink, "title", f.Title, "err", err)
			return
		}
		a.logger.Info("playbook rejection sent to the admin sink", "sink", sink, "title", f.Title)
	})
}

// RejectionFinding is the finding that tells the admin sink a playbook
// commit was refused: every error with its file and line, and what keeps
// running. Its ID is derived from the refused content, so it is stored once.
func RejectionFinding(rej playbooks.Rejection, now time.Time) *event.Finding {
	title := rej.Title()
	running := rej.Running
	if running == "" {
		running = "none"
	}
	var desc strings.Builder
	fmt.Fprintf(&desc, "medic refused this playbook content (%d error(s)); the last good set (%s) keeps running.\n\n", len(rej.Errors), running)
	for _, e := range rej.Errors {
		desc.WriteString(e.Error())
		desc.WriteByte('\n')
	}
	labels := map[string]string{"playbook_set": rej.Version}
	if c := rej.Culprits(); len(c) > 0 {
		labels["repo"], labels["commit"] = c[0].Repo, c[0].Commit
	}
	ev := event.Event{
		ID:          event.NewID("medic", "playbook_rejected/"+rej.Hash, event.StatusFiring, time.Time{}),
		Kind:        KindPlaybookRejected,
		Source:      "medic",
		Status:      event.StatusFiring,
		Severity:    event.SeverityWarning,
		Title:       title,
		Description: strings.TrimSpace(desc.String()),
		Labels:      labels,
		StartsAt:    now.UTC(),
		ReceivedAt:  now.UTC(),
	}
	f := event.NewFinding(ev, now)
	f.PlaybookSet = rej.Running
	rows := make([][2]string, 0, len(rej.Errors))
	for _, e := range rej.Errors {
		loc := e.File
		if e.Line > 0 {
			loc = fmt.Sprintf("%s:%d", e.File, e.Line)
		}
		rows = append(rows, [2]string{loc, e.Msg})
	}
	f.Add(event.Enrichment{Title: "Errors", Source: "medic", Blocks: []event.Block{event.KeyValueBlock(rows)}})
	if len(rej.Sources) > 0 {
		commits := make([][2]string, 0, len(rej.Sources))
		for _, o := range rej.Sources {
			commits = append(commits, [2]string{o.Repo, o.Commit})
		}
		f.Add(event.Enrichment{Title: "Commits in the refused content", Source: "medic", Blocks: []event.Block{event.KeyValueBlock(commits)}})
	}
	return f
}

// playbookWebhook is POST /api/playbooks/webhook: a push webhook from
// GitHub, GitLab or Gitea, verified with playbooks.webhook_secret. It
// answers 202 at once and refreshes in the background; concurrent pushes
// are coalesced.
func (a *App) playbookWebhook(w http.ResponseWriter, r *http.Request) {
	secret := a.cfg.Playbooks.WebhookSecret
	if secret == "" {
		writeJSON(w, http.StatusNotFound, map[string]string{
			"error": "the playbook webhook is off: set playbooks.webhook_secret (or playbooks.webhook_secret_file) to turn it on"})
		return
	}
	// GitHub sends push payloads of up to 25 MB; the body must be read whole
	// for its signature to verify.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max(a.cfg.Webhook.MaxBodyBytes, maxWebhookBody)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body too large"})
			return
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "read body: " + err.Error()})
		return
	}
	push, err := playbooks.VerifyWebhook(r.Header, body, secret)
	if err != nil {
		a.logger.Warn("playbook webhook refused", "remote", r.RemoteAddr, "err", err)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
		return
	}
	switch {
	case push.IsPing:
		writeJSON(w, http.StatusOK, map[string]any{"pong": true, "provider": push.Provider})
		return
	case !push.IsPush:
		writeJSON(w, http.StatusOK, map[string]any{"ignored": fmt.Sprintf("event %q is not a push", push.Event), "provider": push.Provider})
		return
	case push.Branch() != "" && len(a.cfg.PlaybookRepos) > 0 && !a.git.repos.Follows(push.Branch()):
		writeJSON(w, http.StatusOK, map[string]any{"ignored": fmt.Sprintf("branch %q is not followed", push.Branch()), "provider": push.Provider})
		return
	}
	a.logger.Info("playbook webhook: refreshing", "provider", push.Provider, "repository", push.Repository, "ref", push.Ref)
	a.git.repos.Refresh()
	writeJSON(w, http.StatusAccepted, map[string]any{"accepted": true, "provider": push.Provider, "ref": push.Ref})
}
