package bus

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
)

// dlFixture is a bus whose "engine" consumer (events) and "sink-a",
// "sink-b" consumers (findings) fail every delivery while broken is set,
// and count what they handled otherwise.
type dlFixture struct {
	b      *Bus
	dl     *DeadLetters
	broken atomic.Bool

	mu      sync.Mutex
	handled map[string]int // by subject and finding or event ID
	replays map[string]int // of those, how many carried HeaderReplayOf
}

func newDLFixture(t *testing.T) *dlFixture {
	t.Helper()
	f := &dlFixture{b: openBus(t, testConfig(t)), handled: map[string]int{}, replays: map[string]int{}}
	f.broken.Store(true)
	ctx := context.Background()
	handler := func(_ context.Context, d *Delivery) error {
		if f.broken.Load() {
			return errors.New("receiver answered 500")
		}
		id := d.Header.Get(HeaderFindingID)
		if id == "" {
			var ev event.Event
			if err := event.UnmarshalEvent(d.Data, &ev); err != nil {
				return Permanent(err)
			}
			id = ev.ID
		}
		f.mu.Lock()
		f.handled[d.Subject+" "+id]++
		if d.Header.Get(HeaderReplayOf) != "" {
			f.replays[d.Subject+" "+id]++
		}
		f.mu.Unlock()
		return nil
	}
	for durable, subject := range map[string]string{"engine": EventsSubjectPrefix + ">", "sink-a": FindingSubject("a"), "sink-b": FindingSubject("b")} {
		stream := FindingsStream
		if durable == "engine" {
			stream = EventsStream
		}
		if _, err := f.b.Consume(ctx, ConsumerConfig{Stream: stream, Durable: durable, FilterSubject: subject}, handler); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if f.dl, err = f.b.DeadLetters(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

// finding publishes a finding for sinks and returns its ID.
func (f *dlFixture) finding(t *testing.T, name string, sinks ...string) string {
	t.Helper()
	ev := testEvent(name, event.StatusFiring)
	fd := event.NewFinding(ev, ev.StartsAt)
	if err := f.b.PublishFindings(context.Background(), sinks, fd); err != nil {
		t.Fatal(err)
	}
	return fd.ID
}

// waitDead waits until n dead letters are in the stream and returns them,
// newest first.
func (f *dlFixture) waitDead(t *testing.T, n int) []DeadLetter {
	t.Helper()
	var got []DeadLetter
	testkit.Eventually(t, 20*time.Second, "the dead letters", func() bool {
		var err error
		got, err = f.dl.List(context.Background(), DeadLetterFilter{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(got) >= n
	})
	if len(got) != n {
		t.Fatalf("%d dead letters, want %d", len(got), n)
	}
	return got
}

// settled waits until every consumer has acknowledged everything.
func (f *dlFixture) settled(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	testkit.Eventually(t, 20*time.Second, "every consumer to settle", func() bool {
		for stream, durables := range map[string][]string{EventsStream: {"engine"}, FindingsStream: {"sink-a", "sink-b"}} {
			for _, d := range durables {
				c, err := f.b.js.Consumer(ctx, stream, d)
				if err != nil {
					return false
				}
				if ci := c.CachedInfo(); ci.NumPending != 0 || ci.NumAckPending != 0 {
					return false
				}
			}
		}
		return true
	})
}

func (f *dlFixture) counts() (handled, replays map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	handled, replays = map[string]int{}, map[string]int{}
	for k, v := range f.handled {
		handled[k] = v
	}
	for k, v := range f.replays {
		replays[k] = v
	}
	return handled, replays
}

func TestDeadLettersListAndGet(t *testing.T) {
	t.Parallel()
	f := newDLFixture(t)
	ctx := context.Background()
	f1 := f.finding(t, "one", "a", "b")
	f2 := f.finding(t, "two", "a")
	ev := testEvent("three", event.StatusFiring)
	if _, err := f.b.Publish(ctx, []event.Event{ev}); err != nil {
		t.Fatal(err)
	}
	all := f.waitDead(t, 4)
	for i := 1; i < len(all); i++ {
		if all[i-1].Seq <= all[i].Seq {
			t.Fatalf("List is not newest first: seq %d before %d", all[i-1].Seq, all[i].Seq)
		}
	}
	bySubject := map[string]DeadLetter{}
	for _, d := range all {
		bySubject[d.Subject+" "+d.FindingID+d.EventID] = d
		if d.Deliveries != 3 || d.Reason != "failed 3 deliveries, last error: receiver answered 500" {
			t.Errorf("dead letter %d: deliveries %d, reason %q", d.Seq, d.Deliveries, d.Reason)
		}
		if d.Data != nil || d.Header != nil {
			t.Errorf("List returned the payload or headers of %d", d.Seq)
		}
	}
	for key, want := range map[string]struct{ consumer, stream, sink string }{
		"medic.findings.a " + f1:                 {"sink-a", FindingsStream, "a"},
		"medic.findings.b " + f1:                 {"sink-b", FindingsStream, "b"},
		"medic.findings.a " + f2:                 {"sink-a", FindingsStream, "a"},
		"medic.events.prometheus_alert " + ev.ID: {"engine", EventsStream, ""},
	} {
		d, ok := bySubject[key]
		if !ok {
			t.Errorf("no dead letter for %s; have %v", key, bySubject)
			continue
		}
		if d.Consumer != want.consumer || d.Stream != want.stream || d.Sink != want.sink || d.StreamSeq == 0 || d.Time.IsZero() {
			t.Errorf("%s: %+v, want consumer %s stream %s sink %q", key, d, want.consumer, want.stream, want.sink)
		}
	}

	held, err := f.dl.Held(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]uint64{"engine": 1, "sink-a": 2, "sink-b": 1}; !maps.Equal(held, want) {
		t.Errorf("Held = %v, want %v", held, want)
	}

	tests := []struct {
		name   string
		filter DeadLetterFilter
		limit  int
		want   int
	}{
		{"all", DeadLetterFilter{}, 0, 4},
		{"limit keeps the newest", DeadLetterFilter{}, 2, 2},
		{"limit above the count", DeadLetterFilter{}, 10, 4},
		{"sink", DeadLetterFilter{Sink: "a"}, 0, 2},
		{"consumer", DeadLetterFilter{Consumer: "sink-b"}, 0, 1},
		{"subject wildcard", DeadLetterFilter{Subject: "medic.events.>"}, 0, 1},
		{"subject one token", DeadLetterFilter{Subject: "medic.findings.*"}, 0, 3},
		{"consumer and sink that do not meet", DeadLetterFilter{Consumer: "engine", Sink: "a"}, 0, 0},
		{"since in the future", DeadLetterFilter{Since: time.Now().Add(time.Hour)}, 0, 0},
		{"since in the past", DeadLetterFilter{Since: time.Now().Add(-time.Hour)}, 0, 4},
		{"no such consumer", DeadLetterFilter{Consumer: "nobody"}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.dl.List(ctx, tt.filter, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Fatalf("%d dead letters, want %d: %+v", len(got), tt.want, got)
			}
			if tt.limit > 0 && len(got) > 0 && got[0].Seq != all[0].Seq {
				t.Errorf("limited list starts at %d, want the newest %d", got[0].Seq, all[0].Seq)
			}
		})
	}

	d, err := f.dl.Get(ctx, all[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Data) == 0 || d.Header.Get(HeaderDeadReason) == "" || d.Seq != all[0].Seq {
		t.Errorf("Get %d: data %d bytes, headers %v", all[0].Seq, len(d.Data), d.Header)
	}
	if _, err := f.dl.Get(ctx, 9999); !errors.Is(err, ErrDeadLetterNotFound) {
		t.Errorf("Get of a missing sequence: %v, want ErrDeadLetterNotFound", err)
	}
}

// TestDeadLetterReplayDeliversOnce: the receiver is fixed and a dead letter
// replayed, inside the dedup window of the original message: it is handled
// once on its original subject and leaves the dead-letter stream. Two
// replays of it at the same moment, and a third after, handle it no more.
func TestDeadLetterReplayDeliversOnce(t *testing.T) {
	t.Parallel()
	f := newDLFixture(t)
	ctx := context.Background()
	id := f.finding(t, "replayed", "a")
	ev := testEvent("replayed-event", event.StatusFiring)
	if _, err := f.b.Publish(ctx, []event.Event{ev}); err != nil {
		t.Fatal(err)
	}
	dead := f.waitDead(t, 2)
	f.broken.Store(false)

	for _, d := range dead {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() { errs[i] = f.dl.Replay(ctx, d.Seq) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrDeadLetterNotFound):
				t.Fatalf("replay %d: %v", d.Seq, err)
			}
		}
		if ok == 0 {
			t.Fatalf("neither replay of %d succeeded: %v", d.Seq, errs)
		}
		if _, err := f.dl.Get(ctx, d.Seq); !errors.Is(err, ErrDeadLetterNotFound) {
			t.Errorf("dead letter %d still there after its replay (%v)", d.Seq, err)
		}
		if err := f.dl.Replay(ctx, d.Seq); !errors.Is(err, ErrDeadLetterNotFound) {
			t.Errorf("third replay of %d: %v, want ErrDeadLetterNotFound", d.Seq, err)
		}
	}
	f.settled(t)
	handled, replays := f.counts()
	want := map[string]int{"medic.findings.a " + id: 1, "medic.events.prometheus_alert " + ev.ID: 1}
	lost, dups := 0, 0
	for k, n := range want {
		if handled[k] == 0 {
			lost++
		}
		dups += max(handled[k]-n, 0)
		if replays[k] != handled[k] {
			t.Errorf("%s: handled %d times, %d of them with %s", k, handled[k], replays[k], HeaderReplayOf)
		}
	}
	t.Logf("replayed %d dead letters twice at once and once more: handled %v, lost %d, duplicates %d", len(dead), handled, lost, dups)
	if lost != 0 || dups != 0 || len(handled) != len(want) {
		t.Fatalf("handled %v, want %v (lost %d, duplicates %d)", handled, want, lost, dups)
	}
	if left, err := f.dl.List(ctx, DeadLetterFilter{}, 0); err != nil || len(left) != 0 {
		t.Fatalf("dead letters left after replay: %v (%v)", left, err)
	}
}

// TestDeadLetterReplayMatching replays by filter, oldest first, and leaves
// what the filter does not select.
func TestDeadLetterReplayMatching(t *testing.T) {
	t.Parallel()
	f := newDLFixture(t)
	ctx := context.Background()
	ids := []string{f.finding(t, "m1", "a", "b"), f.finding(t, "m2", "a")}
	f.waitDead(t, 3)
	f.broken.Store(false)
	res, err := f.dl.ReplayMatching(ctx, DeadLetterFilter{Sink: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 2 || len(res.Seqs) != 2 || res.Seqs[0] >= res.Seqs[1] {
		t.Fatalf("replay result %+v, want 2 in stream order", res)
	}
	f.settled(t)
	handled, _ := f.counts()
	want := map[string]int{"medic.findings.a " + ids[0]: 1, "medic.findings.a " + ids[1]: 1}
	if len(handled) != len(want) || handled["medic.findings.a "+ids[0]] != 1 || handled["medic.findings.a "+ids[1]] != 1 {
		t.Fatalf("handled %v, want %v", handled, want)
	}
	left, err := f.dl.List(ctx, DeadLetterFilter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Sink != "b" {
		t.Fatalf("left %+v, want sink b's dead letter only", left)
	}
	// Nothing selected: nothing replayed, not an error.
	if res, err := f.dl.ReplayMatching(ctx, DeadLetterFilter{Sink: "a"}); err != nil || res.Replayed != 0 {
		t.Fatalf("second replay: %+v, %v", res, err)
	}
}

// TestDeadLetterReplayNeedsAReader: a finding for a sink that was removed
// since is not replayed into a subject nobody reads; its dead letter stays.
func TestDeadLetterReplayNeedsAReader(t *testing.T) {
	t.Parallel()
	f := newDLFixture(t)
	ctx := context.Background()
	if _, err := f.b.Consume(ctx, ConsumerConfig{Stream: FindingsStream, Durable: "sink-gone", FilterSubject: FindingSubject("gone")},
		func(context.Context, *Delivery) error { return Permanent(errors.New("gone")) }); err != nil {
		t.Fatal(err)
	}
	f.finding(t, "for-gone", "gone")
	dead := f.waitDead(t, 1)
	f.b.mu.Lock()
	for _, c := range f.b.consumers {
		if c.cfg.Durable == "sink-gone" {
			c.Stop()
		}
	}
	f.b.mu.Unlock()
	if err := f.b.js.DeleteConsumer(ctx, FindingsStream, "sink-gone"); err != nil {
		t.Fatal(err)
	}
	if err := f.dl.Replay(ctx, dead[0].Seq); !errors.Is(err, ErrNoReader) {
		t.Fatalf("replay to a subject nobody reads: %v, want ErrNoReader", err)
	}
	if _, err := f.dl.Get(ctx, dead[0].Seq); err != nil {
		t.Fatalf("the dead letter is gone after a refused replay: %v", err)
	}
	// A replay of all of them replays the others and leaves that one.
	f.finding(t, "for-a", "a")
	dead = f.waitDead(t, 2)
	f.broken.Store(false)
	res, err := f.dl.ReplayMatching(ctx, DeadLetterFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 1 || res.Seqs[0] != dead[0].Seq || len(res.Unread) != 1 || res.Unread[0] != dead[1].Seq {
		t.Fatalf("replay of all: %+v; want %d replayed, %d unread", res, dead[0].Seq, dead[1].Seq)
	}
}

func TestDeadLetterDeleteAndPurge(t *testing.T) {
	t.Parallel()
	f := newDLFixture(t)
	ctx := context.Background()
	f.finding(t, "p1", "a", "b")
	f.finding(t, "p2", "a", "b")
	f.finding(t, "p3", "b")
	ev := testEvent("p4", event.StatusFiring)
	if _, err := f.b.Publish(ctx, []event.Event{ev}); err != nil {
		t.Fatal(err)
	}
	all := f.waitDead(t, 6)

	if err := f.dl.Delete(ctx, all[0].Seq); err != nil {
		t.Fatal(err)
	}
	if err := f.dl.Delete(ctx, all[0].Seq); !errors.Is(err, ErrDeadLetterNotFound) {
		t.Fatalf("second delete: %v, want ErrDeadLetterNotFound", err)
	}
	// The deleted one may have been any of them: the counts come from the list.
	wantA := uint64(dlCountSink(all[1:], "a"))
	n, err := f.dl.Purge(ctx, DeadLetterFilter{Sink: "a"})
	if err != nil || n != wantA {
		t.Fatalf("purge sink a: %d, %v; want %d", n, err, wantA)
	}
	if got, _ := f.dl.List(ctx, DeadLetterFilter{Sink: "a"}, 0); len(got) != 0 {
		t.Fatalf("sink a still has %d dead letters", len(got))
	}
	left, _ := f.dl.List(ctx, DeadLetterFilter{}, 0)
	n, err = f.dl.Purge(ctx, DeadLetterFilter{Since: time.Now().Add(time.Hour)})
	if err != nil || n != 0 {
		t.Fatalf("purge of nothing: %d, %v", n, err)
	}
	n, err = f.dl.Purge(ctx, DeadLetterFilter{Consumer: "sink-b"})
	if err != nil || n != uint64(dlCountSink(left, "b")) {
		t.Fatalf("purge consumer sink-b: %d, %v; want %d", n, err, dlCountSink(left, "b"))
	}
	n, err = f.dl.Purge(ctx, DeadLetterFilter{})
	if err != nil || n != uint64(len(left)-dlCountSink(left, "b")) {
		t.Fatalf("purge all: %d, %v; want %d", n, err, len(left)-dlCountSink(left, "b"))
	}
	if got, _ := f.dl.List(ctx, DeadLetterFilter{}, 0); len(got) != 0 {
		t.Fatalf("%d dead letters after purging all", len(got))
	}
}

func dlCountSink(ds []DeadLetter, sink string) int {
	n := 0
	for _, d := range ds {
		if d.Sink == sink {
			n++
		}
	}
	return n
}

func TestDeadLetterFilterValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		filter DeadLetterFilter
		want   string // error prefix; "" is valid
	}{
		{DeadLetterFilter{}, ""},
		{DeadLetterFilter{Sink: "slack", Consumer: "sink-slack"}, ""},
		{DeadLetterFilter{Subject: "medic.findings.*"}, ""},
		{DeadLetterFilter{Subject: "medic.>"}, ""},
		{DeadLetterFilter{Sink: "a", Subject: "medic.findings.a"}, "sink and subject"},
		{DeadLetterFilter{Consumer: "sink.a"}, "consumer"},
		{DeadLetterFilter{Consumer: "*"}, "consumer"},
		{DeadLetterFilter{Subject: "medic..x"}, "subject"},
		{DeadLetterFilter{Subject: "medic.>.x"}, "subject"},
		{DeadLetterFilter{Subject: "medic.a*"}, "subject"},
	}
	for _, tt := range tests {
		err := tt.filter.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.filter, err)
		case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
			t.Errorf("%+v: error %v, want one starting %q", tt.filter, err, tt.want)
		}
	}
}
