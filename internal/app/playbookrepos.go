package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	// excluded are commits refused at start-up with nothing to fall back
	// on, by repository: medic starts without them and takes the
	// repository's next commit.
	excluded map[string]string
	degraded map[string]bool // repositories last reported degraded, for logging transitions
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
//
// A repository that cannot be fetched does not stop medic from starting:
// it runs the commit of the clone kept from an earlier run (the clone is the
// cache: it holds every commit fetched, and refs/medic/applied the one last
// applied), or, with no clone, starts without that repository's playbooks;
// either way it says so (/readyz, medic_playbook_repo_ready, logs) and keeps
// fetching (degradedRetry) until it works.
func (a *App) initPlaybookRepos(ctx context.Context) error {
	a.git.notified = map[string]bool{}
	a.git.excluded = map[string]string{}
	a.git.degraded = map[string]bool{}
	repos, err := playbooks.NewRepos(RepoOptions(a.cfg.PlaybookRepos), filepath.Join(a.cfg.DataDir, "playbook-repos"),
		a.logger.With("component", "playbook-repos"), a.registry)
	if err != nil {
		return err
	}
	a.git.repos = repos
	for _, r := range a.cfg.PlaybookRepos {
		ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "medic_playbook_repo_ready",
			Help:        "1 while the playbook repository's commit runs and its fetches work; 0 while medic runs without it or on an older commit (/readyz says why).",
			ConstLabels: prometheus.Labels{"repo": r.Name},
		}, func() float64 {
			if a.repoDegraded(r.Name) != "" {
				return 0
			}
			return 1
		})
		if err := a.registry.Register(ready); err != nil {
			return fmt.Errorf("register playbook repository metrics: %w", err)
		}
	}
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
		// Not fatal: a crash loop would not make the server reachable.
		a.logger.Warn("degraded: playbook repositories unreachable at start with no clone kept from an earlier run; starting without their playbooks and retrying",
			"retry_every", a.repoRetryInterval(), "err", err)
	}
	for _, s := range repos.Status() {
		a.logger.Info("following playbook repository", "repo", s.Name, "url", s.URL, "branch", s.Branch, "commit", s.Commit)
	}
	return nil
}

// repoRetryInterval is how often repositories are fetched again while one
// is degraded: playbooks.reload_interval, or 10s when that is off.
func (a *App) repoRetryInterval() time.Duration {
	if d := a.cfg.Playbooks.ReloadInterval; d > 0 {
		return d
	}
	return 10 * time.Second
}

// degradedRetry fetches every repository on repoRetryInterval while one is
// degraded, whatever its poll_interval (0 means webhook only, and a webhook
// does not come for a server that was down), and logs when each repository
// becomes degraded or recovers.
func (a *App) degradedRetry(ctx context.Context) {
	t := time.NewTicker(a.repoRetryInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if a.reportRepoHealth() {
			a.git.repos.Refresh() // fetches all, then reloads
		}
	}
}

// reportRepoHealth logs each repository whose degraded state changed and
// reports whether any is degraded.
func (a *App) reportRepoHealth() bool {
	degraded := false
	for _, s := range a.git.repos.Status() {
		reason := a.repoDegraded(s.Name)
		a.git.mu.Lock()
		was := a.git.degraded[s.Name]
		a.git.degraded[s.Name] = reason != ""
		a.git.mu.Unlock()
		switch {
		case reason != "":
			degraded = true
			if !was {
				a.logger.Warn("degraded: "+reason, "repo", s.Name, "url", s.URL)
			}
		case was:
			a.logger.Info("playbook repository no longer degraded: its commit runs and fetches work", "repo", s.Name, "commit", s.Commit)
		}
	}
	return degraded
}

// repoDegraded says why a repository is degraded, "" when it is not: its
// fetches fail, or the running set holds none of its playbooks.
func (a *App) repoDegraded(name string) string {
	var st playbooks.RepoStatus
	found := false
	for _, s := range a.git.repos.Status() {
		if s.Name == name {
			st, found = s, true
		}
	}
	if !found {
		return ""
	}
	var running *playbooks.Origin
	if a.store != nil {
		if set := a.store.Current(); set != nil {
			for i := range set.Sources {
				if set.Sources[i].Repo == name {
					running = &set.Sources[i]
				}
			}
		}
	}
	a.git.mu.Lock()
	excluded := a.git.excluded[name]
	a.git.mu.Unlock()
	var what string
	switch {
	case running != nil && st.LastFetchError == "":
		return ""
	case running != nil:
		what = fmt.Sprintf("serving commit %s (fetched %s, kept in <data_dir>/playbook-repos/%s)", running.Short(), timeOrUnknown(st.LastFetch, st.FailingSince), name)
	case excluded != "" && excluded == st.Commit:
		what = fmt.Sprintf("commit %s was rejected at start-up with no earlier commit to fall back on; none of its playbooks run until a new commit is fetched", playbooks.Origin{Repo: name, Commit: excluded}.Short())
	case st.Commit == "":
		what = "none of its playbooks run (never fetched, no clone kept from an earlier run)"
	default:
		what = fmt.Sprintf("none of its playbooks run (commit %s is not in the running set)", playbooks.Origin{Repo: name, Commit: st.Commit}.Short())
	}
	if st.LastFetchError != "" {
		return fmt.Sprintf("fetch failing since %s, %s: %s", st.FailingSince.UTC().Format(time.RFC3339), what, st.LastFetchError)
	}
	return what
}

// timeOrUnknown names when the running commit was fetched: before the
// failures started, as far as this process knows.
func timeOrUnknown(lastFetch, failingSince time.Time) string {
	if failingSince.IsZero() || lastFetch.Before(failingSince) {
		return "at " + lastFetch.UTC().Format(time.RFC3339)
	}
	return "by an earlier run"
}

// withPlaybookRepos adds the repositories' files to the local source.
func (a *App) withPlaybookRepos(local playbooks.Source) playbooks.Source {
	return func(ctx context.Context) ([]playbooks.File, error) {
		files, err := local(ctx)
		if err != nil {
			return nil, err
		}
		gitFiles, err := a.git.repos.Files()
		gitFiles, err = a.withoutExcluded(gitFiles, err)
		return append(files, gitFiles...), err
	}
}

// withoutExcluded leaves out the files, and the errors, of the commits
// refused at start-up (excludeRejected).
func (a *App) withoutExcluded(files []playbooks.File, err error) ([]playbooks.File, error) {
	a.git.mu.Lock()
	excluded := maps.Clone(a.git.excluded)
	a.git.mu.Unlock()
	if len(excluded) == 0 {
		return files, err
	}
	isExcluded := func(o playbooks.Origin) bool { return !o.IsZero() && excluded[o.Repo] == o.Commit }
	kept := files[:0:0]
	var prefixes []string
	for _, f := range files {
		if isExcluded(f.Origin) {
			prefixes = append(prefixes, f.Origin.String()+":")
			continue
		}
		kept = append(kept, f)
	}
	var perrs playbooks.Errors
	if !errors.As(err, &perrs) {
		return kept, err
	}
	var left playbooks.Errors
	for _, e := range perrs {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(e.File, p) }) {
			left = append(left, e)
		}
	}
	if len(left) == 0 {
		return kept, nil
	}
	return kept, left
}

// excludeRejected marks, for every repository whose newest commit has one
// of the errors, that commit as excluded, and reports whether it marked any.
// Errors of local files exclude nothing: they are the operator's to fix,
// and medic refuses to start on them.
func (a *App) excludeRejected(perrs playbooks.Errors) bool {
	marked := false
	a.git.mu.Lock()
	defer a.git.mu.Unlock()
	for _, s := range a.git.repos.Status() {
		if s.Commit == "" {
			continue
		}
		prefix := playbooks.Origin{Repo: s.Name, Commit: s.Commit}.String() + ":"
		if slices.ContainsFunc(perrs, func(e playbooks.Error) bool { return strings.HasPrefix(e.File, prefix) }) {
			a.git.excluded[s.Name] = s.Commit
			marked = true
		}
	}
	return marked
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
	if !errors.As(err, &perrs) {
		return err
	}
	if a.git.repos.FallBackToApplied() {
		if _, ferr := a.store.Reload(ctx); ferr == nil {
			a.logger.Warn("the newest playbook commits were rejected; started with the commits that ran before the restart",
				"version", a.store.Current().Version)
			return nil
		} else if !errors.As(ferr, &perrs) {
			return err
		}
	}
	// Nothing to fall back on: start without the refused commits (degraded,
	// said by /readyz) rather than not at all; the next commit of each
	// repository is taken as usual.
	if !a.excludeRejected(perrs) {
		return err
	}
	if _, ferr := a.store.Reload(ctx); ferr != nil {
		return err
	}
	a.logger.Warn("degraded: the newest playbook commits were rejected at start with no earlier commit to fall back on; started without them",
		"version", a.store.Current().Version, "errors", err.Error())
	return nil
}

// startPlaybookRepos polls the repositories and serves webhook refreshes.
func (a *App) startPlaybookRepos(ctx context.Context) {
	a.wg.Go(func() {
		a.git.repos.Run(ctx, func(ctx context.Context) { _, _ = a.store.Reload(ctx) })
	})
	if len(a.cfg.PlaybookRepos) > 0 {
		a.reportRepoHealth()
		a.wg.Go(func() { a.degradedRetry(ctx) })
	}
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

// playbookRepoChecks adds each repository to /readyz's body. A degraded
// repository does not make medic unready: alerts are still handled, by the
// set that runs (the clone's commit, or the others' and built-in playbooks).
func (a *App) playbookRepoChecks(checks map[string]string) {
	for _, s := range a.git.repos.Status() {
		key := "playbook_repo " + s.Name
		if reason := a.repoDegraded(s.Name); reason != "" {
			checks[key] = "degraded: " + reason
		} else {
			checks[key] = "ok " + playbooks.Origin{Repo: s.Name, Commit: s.Commit}.Short()
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
