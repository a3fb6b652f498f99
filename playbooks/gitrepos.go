package playbooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultFetchTimeout bounds one fetch of one repository.
const DefaultFetchTimeout = 2 * time.Minute

// Repos follows the playbook repositories of a medic: it fetches each on its
// poll interval and on demand (the webhook, the reload endpoint), and hands
// the Store the newest commit of each. Fetching and validating are separate:
// a commit that fails to fetch leaves the previous one in place (no
// rejection), a commit that fetches but does not validate is rejected by the
// Store as a whole.
type Repos struct {
	sources []*GitSource
	logger  *slog.Logger
	// FetchTimeout bounds one fetch; DefaultFetchTimeout when zero.
	FetchTimeout time.Duration

	kick chan struct{}

	fetches   *prometheus.CounterVec
	lastOK    *prometheus.GaugeVec
	lastFetch *prometheus.GaugeVec
}

// NewRepos returns the repositories, each cloned under cacheDir/<name>.
// Nothing is fetched yet: call Init.
func NewRepos(repos []GitRepoOptions, cacheDir string, logger *slog.Logger, reg prometheus.Registerer) (*Repos, error) {
	r := &Repos{
		logger: logger,
		kick:   make(chan struct{}, 1),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medic_playbook_repo_fetches_total",
			Help: "Fetches of playbook repositories, by repository and result (new_commit, unchanged, failed). A failed fetch keeps the running playbooks.",
		}, []string{"repo", "result"}),
		lastOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "medic_playbook_repo_last_fetch_successful",
			Help: "1 when the last fetch of the playbook repository worked, 0 when it failed.",
		}, []string{"repo"}),
		lastFetch: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "medic_playbook_repo_last_fetch_timestamp_seconds",
			Help: "When the playbook repository was last fetched successfully.",
		}, []string{"repo"}),
	}
	seen := map[string]bool{}
	for _, o := range repos {
		if o.Name == "" || seen[o.Name] {
			return nil, fmt.Errorf("playbook repository names must be unique and not empty: %q", o.Name)
		}
		seen[o.Name] = true
		r.sources = append(r.sources, NewGitSource(o, filepath.Join(cacheDir, o.Name)))
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{r.fetches, r.lastOK, r.lastFetch} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register playbook repository metrics: %w", err)
			}
		}
	}
	return r, nil
}

// Sources lists the repositories in configuration order.
func (r *Repos) Sources() []*GitSource { return r.sources }

// Status reports every repository.
func (r *Repos) Status() []RepoStatus {
	out := make([]RepoStatus, len(r.sources))
	for i, s := range r.sources {
		out[i] = s.Status()
	}
	return out
}

// Init opens the clones kept from an earlier run and fetches every
// repository. A repository that cannot be fetched but has a clone starts
// from the clone's commit (logged); one with neither is an error, which the
// caller may treat as fatal or start without that repository's playbooks
// (Files leaves out what was never fetched).
func (r *Repos) Init(ctx context.Context) error {
	var errs []error
	for _, s := range r.sources {
		cached, err := s.LoadCached()
		if err != nil {
			r.logger.Warn("cannot read the clone kept from an earlier run; fetching afresh", "repo", s.Name(), "err", err)
		}
		if _, ferr := r.fetch(ctx, s); ferr != nil {
			if cached {
				r.logger.Warn("cannot fetch playbook repository; starting from the commit fetched earlier",
					"repo", s.Name(), "commit", s.Status().Commit, "err", ferr)
				continue
			}
			errs = append(errs, ferr)
		}
	}
	return errors.Join(errs...)
}

// Files returns the playbook files of every repository's newest commit.
// Problems of a commit itself (its playbook folder is gone) come back as
// Errors, which the Store rejects like any invalid content.
func (r *Repos) Files() ([]File, error) {
	var files []File
	var errs Errors
	for _, s := range r.sources {
		snap := s.snapshot()
		if snap == nil {
			// Unreachable since start, with no clone kept from an earlier
			// run: its playbooks are left out until a fetch works, and the
			// others run meanwhile (medic starts degraded rather than not
			// at all; Status says why).
			continue
		}
		files = append(files, snap.files...)
		errs = append(errs, snap.errs...)
		if len(snap.files) == 0 {
			// An empty file that carries the commit, so the refused content
			// (and its rejection) still names it; it is never part of a
			// running set, since a snapshot without files has errors.
			files = append(files, File{Path: snap.origin.pathPrefix() + s.opts.Path, Origin: snap.origin})
		}
	}
	if len(errs) > 0 {
		return files, errs
	}
	return files, nil
}

// FetchAll fetches every repository concurrently. changed says at least one
// has a new commit; the error joins every *FetchError.
func (r *Repos) FetchAll(ctx context.Context) (changed bool, err error) {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, s := range r.sources {
		wg.Go(func() {
			c, err := r.fetch(ctx, s)
			mu.Lock()
			defer mu.Unlock()
			changed = changed || c
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	return changed, errors.Join(errs...)
}

// fetch fetches one repository, counting and logging the outcome.
func (r *Repos) fetch(ctx context.Context, s *GitSource) (bool, error) {
	timeout := r.FetchTimeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	before := s.Status()
	changed, err := s.Fetch(ctx)
	name := s.Name()
	switch {
	case err != nil:
		r.fetches.WithLabelValues(name, "failed").Inc()
		r.lastOK.WithLabelValues(name).Set(0)
		r.logger.Warn("cannot fetch playbook repository; the running playbooks stay",
			"repo", name, "commit", before.Commit, "err", err)
	case changed:
		r.fetches.WithLabelValues(name, "new_commit").Inc()
		r.lastOK.WithLabelValues(name).Set(1)
		r.lastFetch.WithLabelValues(name).SetToCurrentTime()
		r.logger.Info("playbook repository has a new commit", "repo", name, "commit", s.Status().Commit, "previous", before.Commit)
	default:
		r.fetches.WithLabelValues(name, "unchanged").Inc()
		r.lastOK.WithLabelValues(name).Set(1)
		r.lastFetch.WithLabelValues(name).SetToCurrentTime()
		if before.LastFetchError != "" {
			r.logger.Info("playbook repository reachable again", "repo", name, "commit", s.Status().Commit)
		}
	}
	return changed, err
}

// MarkApplied records, in each clone, the commit that is now running, so
// that a restart whose newest commit is invalid can fall back to it.
func (r *Repos) MarkApplied(set *Set) {
	for _, o := range set.Sources {
		for _, s := range r.sources {
			if s.Name() == o.Repo {
				if err := s.markApplied(o.Commit); err != nil {
					r.logger.Warn("cannot record the applied commit in the clone", "repo", o.Repo, "err", err)
				}
			}
		}
	}
}

// FallBackToApplied makes every repository offer the commit of the last set
// that was applied (before a restart) instead of its newest one. It reports
// whether any repository changed; used when the newest content is refused
// at start-up, when there is no running set to keep.
func (r *Repos) FallBackToApplied() bool {
	changed := false
	for _, s := range r.sources {
		c, err := s.useApplied()
		if err != nil {
			r.logger.Warn("cannot read the last applied commit", "repo", s.Name(), "err", err)
			continue
		}
		changed = changed || c
	}
	return changed
}

// Follows reports whether a repository follows branch (a push to another
// branch needs no fetch).
func (r *Repos) Follows(branch string) bool {
	for _, s := range r.sources {
		if s.opts.Branch == branch {
			return true
		}
	}
	return false
}

// Refresh asks Run to fetch every repository and reload, without waiting.
// Requests that arrive while one is being served are coalesced into one
// more round, which starts after the current one so it sees their pushes.
func (r *Repos) Refresh() {
	select {
	case r.kick <- struct{}{}:
	default: // a round is already pending
	}
}

// Run polls each repository on its interval and serves Refresh until ctx
// ends. reload is called after a fetch brought a new commit (polling) and
// after every Refresh round; it is the Store's Reload.
func (r *Repos) Run(ctx context.Context, reload func(context.Context)) {
	var wg sync.WaitGroup
	for _, s := range r.sources {
		if s.opts.PollInterval <= 0 {
			continue
		}
		wg.Go(func() {
			t := time.NewTicker(s.opts.PollInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if changed, _ := r.fetch(ctx, s); changed {
						reload(ctx)
					}
				}
			}
		})
	}
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-r.kick:
			_, _ = r.FetchAll(ctx) // failures are logged and counted by fetch
			reload(ctx)
		}
	}
}
