package playbooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Source produces the files of a playbook set. It is called on every reload.
type Source func(ctx context.Context) ([]File, error)

// Store holds the current Set and replaces it only with a Set that loaded
// without a single error, so a bad change never stops medic: the last good
// set keeps running and the rejection is logged and counted.
type Store struct {
	source Source
	opts   Options
	logger *slog.Logger

	current atomic.Pointer[Set]

	mu         sync.Mutex // one reload at a time
	lastHash   string     // content hash of the last attempt, good or bad
	lastErr    error
	reloads    *prometheus.CounterVec
	loaded     prometheus.Gauge
	lastOK     prometheus.Gauge
	lastReload prometheus.Gauge

	onReject func(Rejection) // see OnReject
	onApply  []func(*Set)    // see OnApply
}

// NewStore returns a store; call Reload once before use.
func NewStore(source Source, opts Options, logger *slog.Logger, reg prometheus.Registerer) (*Store, error) {
	s := &Store{
		source: source,
		opts:   opts,
		logger: logger,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medic_playbooks_reloads_total",
			Help: "Playbook set reload attempts whose content changed, by result (applied, rejected).",
		}, []string{"result"}),
		loaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "medic_playbooks_loaded",
			Help: "Playbooks in the running set.",
		}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "medic_playbooks_last_reload_successful",
			Help: "1 when the last changed playbook content was applied, 0 when it was rejected and an older set keeps running.",
		}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "medic_playbooks_last_reload_timestamp_seconds",
			Help: "When the running playbook set was applied.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.reloads, s.loaded, s.lastOK, s.lastReload} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register playbook metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Current returns the running set, or nil before the first good load.
func (s *Store) Current() *Set { return s.current.Load() }

// LastError returns why the newest content was rejected, or nil when the
// running set is the newest content.
func (s *Store) LastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Reload reads the source and applies it if it changed and is valid. It
// returns the validation errors of rejected content (every one of them).
func (s *Store) Reload(ctx context.Context) (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	files, err := s.source(ctx)
	var srcErrs Errors // problems the source found in the content itself
	if err != nil && !errors.As(err, &srcErrs) {
		s.lastErr = err
		s.logger.Error("cannot read playbooks; the running set stays", "err", err)
		return false, err
	}
	h := contentHash(files)
	if len(srcErrs) > 0 {
		h = contentHash(append(files, File{Path: "\x00source-errors", Data: []byte(srcErrs.Error())}))
	}
	if h == s.lastHash {
		return false, s.lastErr // nothing new; do not log the same rejection again
	}
	s.lastHash = h
	set, err := Build(files, s.opts)
	if len(srcErrs) > 0 {
		set, err = nil, mergeErrors(err, srcErrs)
	}
	if err != nil {
		s.lastErr = err
		s.reloads.WithLabelValues("rejected").Inc()
		s.lastOK.Set(0)
		running := "none"
		if cur := s.current.Load(); cur != nil {
			running = cur.Version
		}
		s.logger.Error("playbooks rejected; the last good set keeps running",
			"running_version", running, "rejected_version", versionOf(files), "errors", err.Error())
		if s.onReject != nil {
			s.onReject(newRejection(h, files, err, s.current.Load()))
		}
		return false, err
	}
	s.lastErr = nil
	prev := s.current.Swap(set)
	s.reloads.WithLabelValues("applied").Inc()
	s.lastOK.Set(1)
	s.loaded.Set(float64(len(set.Playbooks)))
	s.lastReload.SetToCurrentTime()
	from := ""
	if prev != nil {
		from = prev.Version
	}
	s.logger.Info("playbooks loaded", "version", set.Version, "previous", from,
		"playbooks", len(set.Playbooks), "files", len(set.Files))
	for _, fn := range s.onApply {
		fn(set)
	}
	return true, nil
}

// Watch reloads every interval until ctx ends.
func (s *Store) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = s.Reload(ctx) // errors are logged and counted by Reload
		}
	}
}

func contentHash(files []File) string {
	idx := make([]int, len(files))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return files[idx[a]].Path < files[idx[b]].Path })
	h := sha256.New()
	for _, i := range idx {
		h.Write([]byte(files[i].Path))
		h.Write([]byte{0})
		h.Write(files[i].Data)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
