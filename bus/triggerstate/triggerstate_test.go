package triggerstate_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/bus/triggerstate"
	"github.com/medichq/medic/internal/natstest"
)

type step struct {
	key, event string
	at         time.Duration // after t0
	window     time.Duration
	want       bool
}

// steps is one story of claims, replayed against every limiter.
var steps = []step{
	{"k", "e1", 0, time.Hour, true},
	{"k", "e1", 0, time.Hour, true},                 // redelivered: the same answer
	{"k", "e2", time.Minute, time.Hour, false},      // inside the window
	{"other", "e2", time.Minute, time.Hour, true},   // another key has its own window
	{"k", "e1", 2 * time.Minute, time.Hour, true},   // a retry of the claimant
	{"k", "e2", 2 * time.Minute, time.Hour, false},  // a refused event stays refused
	{"k", "e3", 61 * time.Minute, time.Hour, true},  // the window passed: e3 claims
	{"k", "e2", 62 * time.Minute, time.Hour, false}, // now inside e3's window
	{"k", "e1", 62 * time.Minute, time.Hour, false}, // e1 lost its claim to e3
	{"w", "e4", 0, 10 * time.Hour, true},
	{"w", "e5", 3 * time.Hour, 10 * time.Hour, true}, // window cut to the 2h TTL
}

const ttl = 2 * time.Hour

// open opens the bucket on ns, as a replica starting does.
func open(t *testing.T, ns *natstest.Server) jetstream.KeyValue {
	t.Helper()
	kv, err := triggerstate.Open(context.Background(), ns.JetStream(), ttl, 1)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func TestAdmit(t *testing.T) {
	t.Parallel()
	kv := open(t, natstest.Start(t, nil))
	ctx := context.Background()
	t0 := time.Now()
	for _, tc := range []struct {
		name string
		lim  triggerstate.Limiter
	}{
		{"kv", triggerstate.NewLimits(kv, ttl)},
		{"memory", triggerstate.NewMemory(ttl)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, s := range steps {
				got, err := tc.lim.Admit(ctx, tc.name+"."+s.key, s.event, s.window, t0.Add(s.at))
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got != s.want {
					t.Errorf("step %d (%s %s at +%s): admitted %v, want %v", i, s.key, s.event, s.at, got, s.want)
				}
			}
		})
	}
}

// The claims are in JetStream: a second replica and a restarted server see
// the same window.
func TestAdmitIsSharedAndSurvivesRestart(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t, nil)
	ctx := context.Background()
	t0 := time.Now()
	if ok, err := triggerstate.NewLimits(open(t, ns), ttl).Admit(ctx, "k", "e1", time.Hour, t0); err != nil || !ok {
		t.Fatalf("first claim: %v, %v", ok, err)
	}
	ns.Stop()
	ns.Start()
	replica := triggerstate.NewLimits(open(t, ns), ttl)
	if ok, err := replica.Admit(ctx, "k", "e2", time.Hour, t0.Add(time.Minute)); err != nil || ok {
		t.Fatalf("after a restart, another event inside the window: admitted %v (%v), want refused", ok, err)
	}
	if ok, err := replica.Admit(ctx, "k", "e1", time.Hour, t0.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("after a restart, the claimant redelivered: admitted %v (%v), want admitted", ok, err)
	}
}

// Replicas racing for one key agree: exactly one event wins, and every
// event asked again gets the answer it got.
func TestAdmitRace(t *testing.T) {
	t.Parallel()
	kv := open(t, natstest.Start(t, nil))
	ctx := context.Background()
	const racers = 8
	now := time.Now()
	answers := make([]bool, racers)
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lim := triggerstate.NewLimits(kv, ttl) // one per replica
			ok, err := lim.Admit(ctx, "race", fmt.Sprint("e", i), time.Hour, now)
			if err != nil {
				t.Error(err)
			}
			answers[i] = ok
			if ok {
				admitted.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := admitted.Load(); got != 1 {
		t.Fatalf("%d racers admitted, want exactly 1", got)
	}
	lim := triggerstate.NewLimits(kv, ttl)
	for i, want := range answers {
		if ok, err := lim.Admit(ctx, "race", fmt.Sprint("e", i), time.Hour, now.Add(time.Second)); err != nil || ok != want {
			t.Errorf("e%d asked again: %v (%v), want %v", i, ok, err, want)
		}
	}
}
