// Package schedule is the source of playbooks that run on a timetable with
// no outside input: the Scheduler turns each due tick of the playbooks'
// on_schedule triggers (triggers/schedule) into an event.
//
// A tick is taken once across replicas and restarts: each schedule's state
// (ticks fired, when the next is due, who holds the current tick) lives in
// the JetStream KV bucket medic_schedules and changes only by
// compare-and-set, and the tick's event ID is derived from the schedule and
// the tick number, so the bus's duplicate window drops a second publish of
// the same tick should a lease ever be taken over.
package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/scheduleevent"
	"github.com/medichq/medic/triggers"
)

// Bucket is the JetStream KV bucket of schedule state, one key per
// schedule ("s.<key>").
const Bucket = "medic_schedules"

// DefaultLeaseTTL is how long a replica holds a tick it took before another
// may take it over: far shorter than the bus's duplicate window (2 m), so
// a takeover's publish of the same tick is dropped as a duplicate, and far
// longer than one publish.
const DefaultLeaseTTL = 30 * time.Second

// retryAfter is the wait after a failed KV read or publish.
const retryAfter = 2 * time.Second

// Options configures a Scheduler.
type Options struct {
	// JetStream opens the state bucket; pass bus.JetStream() so the bucket
	// is re-created if the server loses it.
	JetStream jetstream.JetStream
	// Replicas of the bucket; 0 leaves it to the JetStream handle.
	Replicas  int
	Publisher event.Publisher
	// Clock drives the timers; nil: the real clock.
	Clock clock.Clock
	// Logger defaults to discarding.
	Logger *slog.Logger
	// LeaseTTL defaults to DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Holder names this replica in leases; default hostname, PID and a
	// random suffix.
	Holder string
	// Registerer takes the scheduler's metrics; nil keeps them private.
	Registerer prometheus.Registerer
}

// record is one schedule's state in the bucket.
type record struct {
	Playbook string `json:"playbook"`
	Schedule string `json:"schedule"`
	// Runs counts the ticks fired; Next is when tick Runs+1 is due.
	Runs int       `json:"runs"`
	Next time.Time `json:"next,omitzero"`
	Done bool      `json:"done,omitempty"`
	// Lease, while set, says that Holder is publishing tick Tick and
	// others leave it alone until Until.
	Lease *lease `json:"lease,omitempty"`
}

type lease struct {
	Tick   int       `json:"tick"`
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

// Scheduler fires the loaded on_schedule triggers: one goroutine per
// schedule, each sleeping until its next tick is due.
type Scheduler struct {
	kv     jetstream.KeyValue
	pub    event.Publisher
	clock  clock.Clock
	log    *slog.Logger
	ttl    time.Duration
	holder string

	fired, lost prometheus.Counter

	mu      sync.Mutex
	running map[string]*job
	wg      sync.WaitGroup
}

type job struct {
	t      Schedule
	cancel context.CancelFunc
}

// Open creates (or updates) the state bucket and returns a scheduler with
// no schedules; Set gives it some.
func Open(ctx context.Context, opts Options) (*Scheduler, error) {
	if opts.JetStream == nil || opts.Publisher == nil {
		return nil, errors.New("schedule: JetStream and Publisher are required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.Holder == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		opts.Holder = fmt.Sprintf("%s.%d.%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	kv, err := opts.JetStream.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "medic: on_schedule state, one key per schedule (ticks fired, next due time, the tick being published)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create or update KV bucket %s: %w", Bucket, err)
	}
	s := &Scheduler{kv: kv, pub: opts.Publisher, clock: opts.Clock, log: opts.Logger, ttl: opts.LeaseTTL,
		holder: opts.Holder, running: map[string]*job{},
		fired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "medic_schedule_ticks_total",
			Help: "Scheduled playbook runs (on_schedule ticks) this replica published.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "medic_schedule_lease_conflicts_total",
			Help: "Ticks this replica tried to take while another replica took them (compare-and-set lost); each is a double avoided.",
		}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{s.fired, s.lost} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register schedule metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Schedule is one timetable the playbook set wants run: an on_schedule
// trigger (triggers/schedule.Trigger is one). The scheduler knows no more
// of it than this.
type Schedule interface {
	// Key identifies the schedule (playbook and parameters) in the state
	// bucket and in its events.
	Key() string
	// Playbook is the playbook the schedule belongs to.
	Playbook() string
	// String describes the schedule for logs and titles.
	String() string
	// Limit is how many ticks the schedule has in all; -1 for no end.
	Limit() int
	// Next is when tick runs+1 is due, the last tick (or the schedule's
	// creation) having happened at last.
	Next(runs int, last time.Time) time.Time
}

// Of picks the schedules out of a playbook set's triggers.
func Of(ts []triggers.Trigger) []Schedule {
	var out []Schedule
	for _, t := range ts {
		if s, ok := t.(Schedule); ok {
			out = append(out, s)
		}
	}
	return out
}

// tickEvent is tick number tick (1 for the first run) of schedule sc, due
// at due. Its ID depends only on the schedule and the tick, so two replicas
// (or a retry after a crash) publishing the same tick publish one event.
func tickEvent(sc Schedule, tick int, due, now time.Time) event.Event {
	n := fmt.Sprint(tick)
	if l := sc.Limit(); l > 0 {
		n += fmt.Sprintf(" of %d", l)
	}
	name := sc.Playbook()
	if name == "" {
		name = "(unnamed)"
	}
	fp := sc.Key() + "." + fmt.Sprint(tick)
	return event.Event{
		ID:          event.NewID(scheduleevent.Source, fp, event.StatusFiring, due),
		Kind:        event.KindSchedule,
		Source:      scheduleevent.Source,
		Status:      event.StatusFiring,
		Severity:    event.SeverityInfo,
		Title:       fmt.Sprintf("Scheduled run %s of playbook %s", n, name),
		Description: "Schedule: " + sc.String() + ".",
		Labels: map[string]string{
			scheduleevent.LabelSchedule: sc.Key(), scheduleevent.LabelPlaybook: sc.Playbook(), scheduleevent.LabelTick: fmt.Sprint(tick),
		},
		StartsAt:    due.UTC(),
		Fingerprint: fp,
		ReceivedAt:  now.UTC(),
	}
}

// Set makes ts the running schedules: new ones start, unchanged ones (same
// playbook and parameters) keep running with their state, removed ones stop
// and their state is deleted, so adding the schedule back starts afresh.
func (s *Scheduler) Set(ctx context.Context, ts []Schedule) {
	want := make(map[string]Schedule, len(ts))
	for _, t := range ts {
		want[t.Key()] = t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, j := range s.running {
		if _, ok := want[key]; ok {
			continue
		}
		j.cancel()
		delete(s.running, key)
		if err := s.kv.Delete(ctx, stateKey(key)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			s.log.Warn("cannot delete a removed schedule's state", "playbook", j.t.Playbook(), "schedule", key, "err", err)
		}
		s.log.Info("schedule removed", "playbook", j.t.Playbook(), "schedule", j.t.String())
	}
	for key, t := range want {
		if _, ok := s.running[key]; ok {
			continue
		}
		jctx, cancel := context.WithCancel(ctx)
		s.running[key] = &job{t: t, cancel: cancel}
		s.wg.Go(func() { s.run(jctx, t) })
		s.log.Info("schedule started", "playbook", t.Playbook(), "schedule", t.String())
	}
}

// Stop ends every schedule's goroutine and waits for them. State stays.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	for key, j := range s.running {
		j.cancel()
		delete(s.running, key)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func stateKey(key string) string { return "s." + key }

// run drives one schedule until it is done or ctx ends.
func (s *Scheduler) run(ctx context.Context, t Schedule) {
	log := s.log.With("playbook", t.Playbook(), "schedule", t.String())
	for {
		wait, err := s.step(ctx, t)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Warn("schedule step failed; trying again", "err", err, "retry_in", retryAfter)
			wait = retryAfter
		}
		if wait < 0 {
			log.Info("schedule done: every run fired")
			return
		}
		if wait == 0 {
			continue
		}
		timer := s.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		}
	}
}

// step does what is due for the schedule now and says how long to wait
// before the next look; -1 when the schedule is done.
func (s *Scheduler) step(ctx context.Context, t Schedule) (time.Duration, error) {
	rec, rev, err := s.load(ctx, t)
	if err != nil {
		return 0, err
	}
	if rec.Done {
		return -1, nil
	}
	now := s.clock.Now()
	if now.Before(rec.Next) {
		return rec.Next.Sub(now), nil
	}
	tick := rec.Runs + 1
	if l := rec.Lease; l != nil && l.Tick == tick && l.Holder != s.holder && now.Before(l.Until) {
		return l.Until.Sub(now), nil // another replica is publishing it
	}
	// Take the tick: only one replica's compare-and-set succeeds.
	rec.Lease = &lease{Tick: tick, Holder: s.holder, Until: now.Add(s.ttl)}
	if rev, err = s.update(ctx, t, rec, rev); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			s.lost.Inc()
			return 0, nil // someone else moved first: look again
		}
		return 0, err
	}
	ev := tickEvent(t, tick, rec.Next, now)
	res, err := s.pub.Publish(ctx, []event.Event{ev})
	if err != nil {
		// The lease stays: this replica retries, or another after it ends,
		// with the same event ID.
		return 0, fmt.Errorf("publish tick %d: %w", tick, err)
	}
	s.fired.Inc()
	s.log.Info("scheduled run published", "playbook", t.Playbook(), "tick", tick, "event", ev.ID, "duplicate", res.Duplicates > 0)
	rec.Runs, rec.Lease = tick, nil
	rec.Next = t.Next(tick, now)
	if l := t.Limit(); l > 0 && tick >= l {
		rec.Done, rec.Next = true, time.Time{}
	}
	if _, err := s.update(ctx, t, rec, rev); err != nil {
		// Published but not recorded: the lease runs out and the tick is
		// published again under the same ID, which the bus drops.
		return 0, fmt.Errorf("record tick %d: %w", tick, err)
	}
	return 0, nil
}

// load reads the schedule's record, creating it when absent: the first
// tick is due one delay after the schedule first appears.
func (s *Scheduler) load(ctx context.Context, t Schedule) (record, uint64, error) {
	for range 3 {
		e, err := s.kv.Get(ctx, stateKey(t.Key()))
		if err == nil {
			var rec record
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				return record{}, 0, fmt.Errorf("decode schedule state %s: %w", t.Key(), err)
			}
			return rec, e.Revision(), nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return record{}, 0, fmt.Errorf("read schedule state %s: %w", t.Key(), err)
		}
		rec := record{Playbook: t.Playbook(), Schedule: t.String(), Next: t.Next(0, s.clock.Now())}
		data, _ := json.Marshal(rec)
		rev, err := s.kv.Create(ctx, stateKey(t.Key()), data)
		if err == nil {
			return rec, rev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return record{}, 0, fmt.Errorf("create schedule state %s: %w", t.Key(), err)
		}
		// Another replica created it first: read theirs.
	}
	return record{}, 0, fmt.Errorf("schedule state %s keeps changing under us", t.Key())
}

func (s *Scheduler) update(ctx context.Context, t Schedule, rec record, rev uint64) (uint64, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("encode schedule state %s: %w", t.Key(), err)
	}
	return s.kv.Update(ctx, stateKey(t.Key()), data, rev)
}
