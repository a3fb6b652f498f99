package schedule

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.yaml.in/yaml/v3"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/scheduleevent"
	"github.com/medichq/medic/internal/natstest"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/triggers"
	schedtrig "github.com/medichq/medic/triggers/schedule"
)

// ledger is a Publisher that records every publish of every event ID, as
// the bus would see them: a second publish of an ID is a duplicate.
type ledger struct {
	mu    sync.Mutex
	ids   []string
	n     map[string]int
	ticks map[string]int // "<playbook>#<tick>" → publishes
}

func newLedger() *ledger { return &ledger{n: map[string]int{}, ticks: map[string]int{}} }

func (l *ledger) Publish(_ context.Context, evs []event.Event) (event.PublishResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var res event.PublishResult
	for _, ev := range evs {
		if l.n[ev.ID] > 0 {
			res.Duplicates++
		} else {
			res.Stored++
			l.ids = append(l.ids, ev.ID)
		}
		l.n[ev.ID]++
		l.ticks[ev.Labels[scheduleevent.LabelPlaybook]+"#"+ev.Labels[scheduleevent.LabelTick]]++
	}
	return res, nil
}

// counts returns the distinct events published and the publishes beyond
// the first of each.
func (l *ledger) counts() (accepted, duplicates int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.n {
		duplicates += n - 1
	}
	return len(l.ids), duplicates
}

// missing lists the ticks 1…n of playbook that were never published.
func (l *ledger) missing(playbook string, n int) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	for i := 1; i <= n; i++ {
		if l.ticks[fmt.Sprintf("%s#%d", playbook, i)] == 0 {
			out = append(out, i)
		}
	}
	return out
}

// expect fails the test unless ticks 1…n of playbook, and no other event,
// were each published exactly once; it logs the counts.
func (l *ledger) expect(t *testing.T, playbook string, n int) {
	t.Helper()
	accepted, dups := l.counts()
	missing := l.missing(playbook, n)
	t.Logf("ticks: accepted %d, lost %d, duplicates %d", accepted, len(missing), dups)
	if accepted != n || dups != 0 || len(missing) != 0 {
		t.Fatalf("accepted %d, duplicates %d, never published %v; want %d, 0, none", accepted, dups, missing, n)
	}
}

// start is a NATS server, a fake clock at 10:00 UTC and an empty ledger.
func start(t *testing.T) (*natstest.Server, *clocktesting.FakeClock, *ledger) {
	t.Helper()
	return natstest.Start(t, nil), clocktesting.NewFakeClock(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)), newLedger()
}

func buildTrigger(t *testing.T, playbook, params string) *schedtrig.Trigger {
	t.Helper()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(params), &node); err != nil {
		t.Fatal(err)
	}
	tr, err := triggers.NewRegistry(schedtrig.Register).Build(schedtrig.TriggerName, node.Content[0])
	if err != nil {
		t.Fatal(err)
	}
	st := tr.(*schedtrig.Trigger)
	st.BindPlaybook(playbook)
	return st
}

func openScheduler(t *testing.T, js jetstream.JetStream, pub event.Publisher, clk *clocktesting.FakeClock, holder string) *Scheduler {
	t.Helper()
	s, err := Open(context.Background(), Options{JetStream: js, Publisher: pub, Clock: clk, Holder: holder})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// advance moves the fake clock by d once every schedule goroutine is
// waiting on it, then waits until the ledger holds want events.
func advance(t *testing.T, clk *clocktesting.FakeClock, waiters int, d time.Duration, l *ledger, want int) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, fmt.Sprintf("%d timers waiting", waiters), func() bool {
		return clk.Waiters() >= waiters
	})
	clk.Step(d)
	testkit.Eventually(t, 10*time.Second, fmt.Sprintf("%d ticks published", want), func() bool {
		n, _ := l.counts()
		return n >= want
	})
}

// Two replicas sharing one NATS server fire each tick of a schedule once:
// both wake at the same instant of the shared clock, and the
// compare-and-set lease lets one of them publish.
func TestTwoReplicasFireEachTickOnce(t *testing.T) {
	t.Parallel()
	srv, clk, l := start(t)
	ctx := context.Background()
	const ticks = 5
	tr := buildTrigger(t, "disk-report", "fixed_delay_repeat: {repeat: 5, seconds_delay: 60}")
	replicas := []*Scheduler{
		openScheduler(t, srv.JetStream(), l, clk, "replica-a"),
		openScheduler(t, srv.JetStream(), l, clk, "replica-b"),
	}
	for _, s := range replicas {
		s.Set(ctx, []Schedule{tr})
	}
	for i := 1; i <= ticks; i++ {
		advance(t, clk, 2, 60*time.Second, l, i)
	}
	// Past the end of the series nothing more fires.
	clk.Step(time.Hour)
	for _, s := range replicas {
		s.Stop()
	}
	t.Logf("lease conflicts: %v + %v", testutil.ToFloat64(replicas[0].lost), testutil.ToFloat64(replicas[1].lost))
	l.expect(t, "disk-report", ticks)
}

// A restart in the middle of a series resumes it: repeat 3 fires three
// times in all, one before the restart and two after, none again.
func TestRestartResumesTheSeries(t *testing.T) {
	t.Parallel()
	srv, clk, l := start(t)
	ctx := context.Background()
	tr := buildTrigger(t, "nightly", "fixed_delay_repeat: {repeat: 3, seconds_delay: 300}")

	first := openScheduler(t, srv.JetStream(), l, clk, "before")
	first.Set(ctx, []Schedule{tr})
	advance(t, clk, 1, 300*time.Second, l, 1)
	testkit.Eventually(t, 10*time.Second, "the first run recorded", func() bool { return clk.Waiters() >= 1 })
	first.Stop()

	// The NATS server restarts too: the state is on its disk.
	srv.Stop()
	srv.Start()
	second := openScheduler(t, srv.JetStream(), l, clk, "after")
	second.Set(ctx, []Schedule{buildTrigger(t, "nightly", "fixed_delay_repeat: {repeat: 3, seconds_delay: 300}")})
	advance(t, clk, 1, 300*time.Second, l, 2)
	advance(t, clk, 1, 300*time.Second, l, 3)
	clk.Step(24 * time.Hour)
	second.Stop()
	l.expect(t, "nightly", 3)
}

// dynamic_delay_repeat runs once after each period, each measured from the
// run before; cron runs at its slots. The events carry the due time.
func TestDelaysAndCron(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 4, 10, 0, 30, 0, time.UTC)
	tests := []struct {
		name, params string
		steps        []time.Duration
		due          []time.Time
	}{
		{
			name:   "dynamic delays",
			params: "dynamic_delay_repeat: {delay_periods: [60, 120, 600]}",
			steps:  []time.Duration{60 * time.Second, 120 * time.Second, 600 * time.Second},
			due:    []time.Time{start.Add(time.Minute), start.Add(3 * time.Minute), start.Add(13 * time.Minute)},
		},
		{
			name:   "cron every five minutes",
			params: `cron: "*/5 * * * *"`,
			steps:  []time.Duration{270 * time.Second, 5 * time.Minute},
			due:    []time.Time{start.Add(270 * time.Second), start.Add(570 * time.Second)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := natstest.Start(t, nil)
			clk := clocktesting.NewFakeClock(start)
			l := &recording{ledger: newLedger()}
			s := openScheduler(t, srv.JetStream(), l, clk, "only")
			s.Set(context.Background(), []Schedule{buildTrigger(t, "p", tt.params)})
			for i, d := range tt.steps {
				advance(t, clk, 1, d, l.ledger, i+1)
			}
			clk.Step(time.Hour)
			s.Stop()
			evs := l.events()
			if len(evs) < len(tt.due) {
				t.Fatalf("got %d events, want at least %d", len(evs), len(tt.due))
			}
			for i, want := range tt.due {
				if !evs[i].StartsAt.Equal(want) || evs[i].Labels[scheduleevent.LabelTick] != fmt.Sprint(i+1) {
					t.Errorf("tick %d: due %s (label %s), want %s", i+1, evs[i].StartsAt, evs[i].Labels[scheduleevent.LabelTick], want)
				}
			}
			if tt.name == "dynamic delays" && len(evs) != 3 {
				t.Errorf("dynamic_delay_repeat of 3 periods fired %d times", len(evs))
			}
		})
	}
}

// recording keeps the events themselves.
type recording struct {
	*ledger
	mu  sync.Mutex
	evs []event.Event
}

func (r *recording) Publish(ctx context.Context, evs []event.Event) (event.PublishResult, error) {
	r.mu.Lock()
	r.evs = append(r.evs, evs...)
	r.mu.Unlock()
	return r.ledger.Publish(ctx, evs)
}

func (r *recording) events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.evs...)
}

// A reload that keeps a schedule keeps its state; one that drops it stops
// it and deletes its state, so bringing it back starts a new series.
func TestSetKeepsUnchangedAndDropsRemoved(t *testing.T) {
	t.Parallel()
	srv, clk, l := start(t)
	js := srv.JetStream()
	ctx := context.Background()
	s := openScheduler(t, js, l, clk, "only")
	kept := buildTrigger(t, "kept", "fixed_delay_repeat: {repeat: -1, seconds_delay: 60}")
	dropped := buildTrigger(t, "dropped", "fixed_delay_repeat: {repeat: -1, seconds_delay: 60}")
	s.Set(ctx, []Schedule{kept, dropped})
	advance(t, clk, 2, time.Minute, l, 2)
	testkit.Eventually(t, 10*time.Second, "both schedules waiting again", func() bool { return clk.Waiters() >= 2 })

	// The reload builds new trigger values for the same playbook: same key.
	s.Set(ctx, []Schedule{buildTrigger(t, "kept", "fixed_delay_repeat: {repeat: -1, seconds_delay: 60}")})
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, stateKey(dropped.Key())); err == nil {
		t.Errorf("the removed schedule's state is still in %s", Bucket)
	}
	advance(t, clk, 1, time.Minute, l, 3)
	clk.Step(time.Second)
	s.Stop()
	if m := l.missing("kept", 2); len(m) != 0 {
		t.Errorf("kept schedule: ticks %v missing", m)
	}
	if _, dups := l.counts(); dups != 0 {
		t.Errorf("%d duplicate publishes", dups)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ticks["dropped#2"] != 0 || l.ticks["kept#3"] != 0 {
		t.Errorf("ticks after the reload: %v; want kept#2 only", l.ticks)
	}
}

// failing is a Publisher whose bus cannot store: every publish fails.
type failing struct{ calls atomic.Int32 }

func (f *failing) Publish(context.Context, []event.Event) (event.PublishResult, error) {
	f.calls.Add(1)
	return event.PublishResult{}, errors.New("nats: no responders available for request")
}

// A replica that took a run and cannot publish it (its bus is gone, or it
// dies) holds the run only for the lease: another replica then publishes
// it, once, and the series goes on.
func TestHeldRunIsTakenOverAfterTheLease(t *testing.T) {
	t.Parallel()
	srv, clk, l := start(t)
	ctx := context.Background()
	stuck := &failing{}
	a, err := Open(ctx, Options{JetStream: srv.JetStream(), Publisher: stuck, Clock: clk, Holder: "stuck", LeaseTTL: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	a.Set(ctx, []Schedule{buildTrigger(t, "report", "fixed_delay_repeat: {repeat: 2, seconds_delay: 60}")})
	testkit.Eventually(t, 10*time.Second, "the first run due", func() bool { return clk.Waiters() >= 1 })
	clk.Step(60 * time.Second)
	testkit.Eventually(t, 10*time.Second, "the stuck replica tried", func() bool { return stuck.calls.Load() >= 1 })
	a.Stop() // it dies holding the lease

	b := openScheduler(t, srv.JetStream(), l, clk, "healthy")
	b.Set(ctx, []Schedule{buildTrigger(t, "report", "fixed_delay_repeat: {repeat: 2, seconds_delay: 60}")})
	// Within the lease the healthy replica leaves the run alone.
	testkit.Eventually(t, 10*time.Second, "the healthy replica waiting", func() bool { return clk.Waiters() >= 1 })
	clk.Step(10 * time.Second)
	if n, _ := l.counts(); n != 0 {
		t.Fatalf("%d runs published while another replica held the lease", n)
	}
	advance(t, clk, 1, 20*time.Second, l, 1) // the lease ends: taken over
	advance(t, clk, 1, 60*time.Second, l, 2)
	clk.Step(time.Hour)
	b.Stop()
	l.expect(t, "report", 2)
}

// A tick matches its own playbook's trigger only, also when two playbooks
// share a schedule, and nothing but ticks.
func TestMatchIsPerPlaybook(t *testing.T) {
	t.Parallel()
	a := buildTrigger(t, "a", "fixed_delay_repeat: {repeat: -1, seconds_delay: 60}")
	b := buildTrigger(t, "b", "fixed_delay_repeat: {repeat: -1, seconds_delay: 60}")
	due := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	ev := tickEvent(a, 1, due, due)
	if !a.Match(&ev) || b.Match(&ev) {
		t.Fatalf("a tick of a matched a=%v b=%v; want true, false", a.Match(&ev), b.Match(&ev))
	}
	if again := tickEvent(a, 1, due, due.Add(time.Minute)); again.ID != ev.ID {
		t.Errorf("the same tick published later has another ID (%s, %s): the bus could not drop the double", ev.ID, again.ID)
	}
	if next := tickEvent(a, 2, due.Add(time.Minute), due); next.ID == ev.ID {
		t.Error("ticks 1 and 2 share an ID")
	}
	alert := event.Event{Kind: event.KindPrometheusAlert, Labels: ev.Labels}
	if a.Match(&alert) {
		t.Error("an alert carrying the tick's labels matched")
	}
	if ev.Title != "Scheduled run 1 of playbook a" || ev.Kind != event.KindSchedule {
		t.Errorf("event: kind %s, title %q", ev.Kind, ev.Title)
	}
}
