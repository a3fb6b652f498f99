package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
)

func openAlertState(t *testing.T, b *Bus) *AlertState {
	t.Helper()
	s, err := b.AlertState(context.Background())
	if err != nil {
		t.Fatalf("open alert state: %v", err)
	}
	return s
}

func alertStateConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.AlertStateTTL = time.Hour
	return cfg
}

func TestAlertKey(t *testing.T) {
	t.Parallel()
	firing := testEvent("a", event.StatusFiring)
	resolved := testEvent("a", event.StatusResolved)
	kube := firing
	kube.Kind = event.KindKubernetesResource
	unknown := firing
	unknown.Status = "pending"
	noID := firing
	noID.ID = ""
	for _, tc := range []struct {
		name string
		ev   event.Event
		want string // "" when untracked
	}{
		{"firing alert", firing, "firing." + firing.ID},
		{"its resolve", resolved, "resolved." + resolved.ID},
		{"kubernetes event", kube, ""},
		{"unknown status", unknown, ""},
		{"no ID", noID, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key, ok := AlertKey(&tc.ev)
			if ok != (tc.want != "") || key != tc.want {
				t.Fatalf("AlertKey = %q, %v; want %q", key, ok, tc.want)
			}
		})
	}
}

// TestAlertStateOneClaimPerLifetime walks one alert's life: the first
// message of each status claims it, re-sends (new messages, same alert) do
// not, a redelivery of the claiming message still does, and the same alert
// firing again later (a new startsAt) is a new lifetime.
func TestAlertStateOneClaimPerLifetime(t *testing.T) {
	t.Parallel()
	s := openAlertState(t, openBus(t, alertStateConfig(t)))
	ctx := context.Background()
	firing := testEvent("disk", event.StatusFiring)
	resolved := testEvent("disk", event.StatusResolved)
	again := testEvent("disk", event.StatusFiring)
	again.StartsAt = again.StartsAt.Add(time.Hour)
	again.ID = event.NewID("test", "disk", event.StatusFiring, again.StartsAt)
	other := testEvent("cpu", event.StatusFiring)
	unseen := testEvent("mem", event.StatusResolved)

	steps := []struct {
		name      string
		ev        *event.Event
		seq       uint64
		first     bool
		claimedBy uint64
		repeats   int
	}{
		{"first firing", &firing, 1, true, 1, 0},
		{"re-sent firing", &firing, 7, false, 1, 1},
		{"re-sent again", &firing, 9, false, 1, 2},
		{"redelivery of the first", &firing, 1, true, 1, 2},
		{"another alert", &other, 10, true, 10, 0},
		{"first resolve", &resolved, 11, true, 11, 0},
		{"re-sent resolve", &resolved, 12, false, 11, 1},
		{"late firing after the resolve", &firing, 13, false, 1, 3},
		{"fires again: new lifetime", &again, 14, true, 14, 0},
		{"resolve of an alert never seen firing", &unseen, 15, true, 15, 0},
		{"its repeat", &unseen, 16, false, 15, 1},
	}
	for _, st := range steps {
		c, err := s.Claim(ctx, st.ev, st.seq)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if c.First != st.first || c.ClaimedBy != st.claimedBy || c.Repeats != st.repeats {
			t.Errorf("%s: got first=%v claimedBy=%d repeats=%d, want %v %d %d",
				st.name, c.First, c.ClaimedBy, c.Repeats, st.first, st.claimedBy, st.repeats)
		}
	}
	// Events without a lifetime pass through without touching the bucket.
	manual := testEvent("job", event.StatusFiring)
	manual.Kind = event.KindManual
	if c, err := s.Claim(ctx, &manual, 20); err != nil || !c.First {
		t.Fatalf("manual event: got %+v, %v; want first", c, err)
	}
	if n := bucketKeys(t, s); n != 5 {
		t.Fatalf("bucket has %d keys, want 5 (disk firing, cpu firing, disk resolved, disk firing again, mem resolved)", n)
	}
}

func bucketKeys(t *testing.T, s *AlertState) int {
	t.Helper()
	keys, err := s.kv.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	return n
}

// TestAlertStateReplicasAgree races two medic connections (replicas on one
// NATS) claiming the same alerts with different messages: exactly one
// message per alert and status wins.
func TestAlertStateReplicasAgree(t *testing.T) {
	t.Parallel()
	port := testkit.FreePort(t)
	cfg := alertStateConfig(t)
	cfg.Listen = fmt.Sprintf("127.0.0.1:%d", port)
	b1 := openBus(t, cfg)
	cfg2 := alertStateConfig(t)
	cfg2.URL = fmt.Sprintf("nats://127.0.0.1:%d", port)
	b2 := openBus(t, cfg2)
	replicas := []*AlertState{openAlertState(t, b1), openAlertState(t, b2)}

	const alerts, perReplica = 20, 4
	var (
		mu    sync.Mutex
		wins  = map[string]int{}
		seen  int
		errs  []error
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for a := range alerts {
		for _, status := range []event.Status{event.StatusFiring, event.StatusResolved} {
			ev := testEvent(fmt.Sprintf("alert-%d", a), status)
			for r, s := range replicas {
				for i := range perReplica {
					seq := uint64(1 + a*1000 + r*100 + i)
					if status == event.StatusResolved {
						seq += 500
					}
					wg.Go(func() {
						<-start
						c, err := s.Claim(context.Background(), &ev, seq)
						mu.Lock()
						defer mu.Unlock()
						seen++
						if err != nil {
							errs = append(errs, err)
							return
						}
						if c.First {
							wins[string(status)+"/"+ev.ID]++
						}
					})
				}
			}
		}
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d claims failed, first: %v", len(errs), errs[0])
	}
	if seen != alerts*2*len(replicas)*perReplica {
		t.Fatalf("%d claims made, want %d", seen, alerts*2*len(replicas)*perReplica)
	}
	lost, dup := 0, 0
	for a := range alerts {
		for _, status := range []event.Status{event.StatusFiring, event.StatusResolved} {
			ev := testEvent(fmt.Sprintf("alert-%d", a), status)
			switch n := wins[string(status)+"/"+ev.ID]; {
			case n == 0:
				lost++
			case n > 1:
				dup += n - 1
			}
		}
	}
	t.Logf("claims=%d alerts×statuses=%d lost=%d duplicates=%d", seen, alerts*2, lost, dup)
	if lost != 0 || dup != 0 {
		t.Fatalf("lost=%d duplicates=%d, want 0 and 0", lost, dup)
	}
}

// TestAlertStateRelease: a failed claimer gives its claim up so a re-send
// can take it, unless a re-send already refreshed the record, in which case
// the claim stays with the failed message's redelivery.
func TestAlertStateRelease(t *testing.T) {
	t.Parallel()
	s := openAlertState(t, openBus(t, alertStateConfig(t)))
	ctx := context.Background()
	claim := func(ev *event.Event, seq uint64) AlertClaim {
		t.Helper()
		c, err := s.Claim(ctx, ev, seq)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	release := func(c AlertClaim) {
		t.Helper()
		if err := s.Release(ctx, c); err != nil {
			t.Fatal(err)
		}
	}

	a := testEvent("released", event.StatusFiring)
	release(claim(&a, 1))
	if c := claim(&a, 2); !c.First || c.ClaimedBy != 2 {
		t.Fatalf("re-send after a release: got %+v, want it to claim", c)
	}

	b := testEvent("refreshed", event.StatusFiring)
	c1 := claim(&b, 1)
	if c := claim(&b, 2); c.First {
		t.Fatal("a re-send claimed an alert already claimed")
	}
	release(c1) // the record changed since c1: nothing is released
	if c := claim(&b, 3); c.First || c.ClaimedBy != 1 {
		t.Fatalf("after a stale release: got %+v, want the claim still held by message 1", c)
	}
	if c := claim(&b, 1); !c.First {
		t.Fatal("the redelivery of the claiming message was not recognised")
	}

	// Releasing a repeat, or an untracked event's claim, changes nothing.
	release(AlertClaim{})
	release(claim(&b, 4))
	if c := claim(&b, 5); c.First {
		t.Fatal("releasing a repeat released the claim")
	}
}

// TestAlertStateRecordLivesWhileResent: the record expires a TTL after its
// last write, and every re-send writes it, so an alert re-sent more often
// than the TTL stays claimed for as long as it fires.
func TestAlertStateRecordLivesWhileResent(t *testing.T) {
	t.Parallel()
	cfg := alertStateConfig(t)
	cfg.DedupWindow = time.Second
	cfg.AlertStateTTL = 3 * time.Second
	s := openAlertState(t, openBus(t, cfg))
	ctx := context.Background()
	ev := testEvent("long", event.StatusFiring)
	if c, err := s.Claim(ctx, &ev, 1); err != nil || !c.First {
		t.Fatalf("first claim: %+v, %v", c, err)
	}
	// Re-sent every half TTL for more than two TTLs: never claimed again.
	seq := uint64(2)
	for end := time.Now().Add(2*cfg.AlertStateTTL + time.Second); time.Now().Before(end); seq++ {
		time.Sleep(cfg.AlertStateTTL / 2)
		c, err := s.Claim(ctx, &ev, seq)
		if err != nil {
			t.Fatal(err)
		}
		if c.First {
			t.Fatalf("re-send %d claimed the alert again: its record expired while it was re-sent", seq)
		}
	}
	// Silent for longer than the TTL: the record is gone (looked at without
	// claiming, which would refresh it) and the next message claims it.
	key, _ := AlertKey(&ev)
	testkit.Eventually(t, 20*time.Second, "the alert state key to expire", func() bool {
		_, err := s.kv.Get(ctx, key)
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
	if c, err := s.Claim(ctx, &ev, seq); err != nil || !c.First {
		t.Fatalf("claim after the record expired: %+v, %v", c, err)
	}
}

// TestAlertStateFailureMeansProcess: when the bucket cannot be used, Claim
// says so and answers First, so the caller processes the alert (a possible
// duplicate) rather than dropping it.
func TestAlertStateFailureMeansProcess(t *testing.T) {
	t.Parallel()
	b := openBus(t, alertStateConfig(t))
	s := openAlertState(t, b)
	ctx := context.Background()
	if err := b.js.DeleteKeyValue(ctx, AlertStateBucket); err != nil {
		t.Fatal(err)
	}
	ev := testEvent("gone", event.StatusFiring)
	c, err := s.Claim(ctx, &ev, 1)
	if err == nil || !c.First {
		t.Fatalf("claim on a deleted bucket: got %+v, %v; want an error and First", c, err)
	}
	if !strings.Contains(err.Error(), "claim alert firing.") {
		t.Fatalf("error does not say what it was doing: %v", err)
	}
}

func TestAlertStateTTLValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ttl     time.Duration
		wantErr bool
	}{
		{0, false}, // off
		{time.Minute, false},
		{7 * 24 * time.Hour, false},
		{time.Second, true}, // shorter than dedup_window (1m)
		{-time.Hour, true},
	} {
		cfg := testConfig(t)
		cfg.AlertStateTTL = tc.ttl
		err := cfg.Validate()
		if (err != nil) != tc.wantErr {
			t.Errorf("alert_state_ttl %s: err = %v, want error %v", tc.ttl, err, tc.wantErr)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "bus.alert_state_ttl:") {
			t.Errorf("alert_state_ttl %s: error does not name the field: %v", tc.ttl, err)
		}
	}
	cfg := testConfig(t)
	if _, err := openBus(t, cfg).AlertState(context.Background()); err == nil {
		t.Fatal("AlertState opened with alert_state_ttl 0 (off)")
	}
}

// TestAlertRecordForms: the compact record round-trips and is a few bytes
// (its size is what keeps a storm's claims in few nats-server blocks), a
// JSON record written by an older medic still decodes, and anything else is
// an error rather than a silent zero claim.
func TestAlertRecordForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		value   []byte
		want    alertRecord
		wantErr bool
	}{
		{"compact", appendRecord(nil, alertRecord{Seq: 1 << 40, Repeats: 300}), alertRecord{Seq: 1 << 40, Repeats: 300}, false},
		{"compact, first claim", appendRecord(nil, alertRecord{Seq: 7}), alertRecord{Seq: 7}, false},
		{"legacy JSON", []byte(`{"event":"abc","seq":42,"claimedAt":"2026-11-22T10:00:00Z","lastSeen":"2026-11-22T11:00:00Z","repeats":3}`),
			alertRecord{Seq: 42, Repeats: 3, event: "abc"}, false},
		{"empty", nil, alertRecord{}, true},
		{"unknown form", []byte{9, 1, 0}, alertRecord{}, true},
		{"truncated", []byte{recordCompact, 0x80}, alertRecord{}, true},
		{"bad JSON", []byte(`{"seq":`), alertRecord{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseRecord(tc.value)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseRecord(%q) = %+v, %v; want %+v, error %v", tc.value, got, err, tc.want, tc.wantErr)
			}
		})
	}
	// A first claim of a busy stream (sequence in the millions) is 6 bytes
	// (form, 4-byte sequence, no repeats); the JSON form was ~150.
	if n := len(appendRecord(nil, alertRecord{Seq: 5_000_000})); n != 6 {
		t.Fatalf("a first claim's record is %d bytes, want 6", n)
	}
}

// TestAlertStateReadsLegacyRecords: an alert claimed by a medic that wrote
// JSON records stays claimed after an upgrade: a re-send is suppressed and
// the claiming message's redelivery is still recognised.
func TestAlertStateReadsLegacyRecords(t *testing.T) {
	t.Parallel()
	s := openAlertState(t, openBus(t, alertStateConfig(t)))
	ctx := context.Background()
	ev := testEvent("upgraded", event.StatusFiring)
	key, _ := AlertKey(&ev)
	legacy := fmt.Sprintf(`{"event":%q,"seq":3,"claimedAt":"2026-11-22T10:00:00Z","lastSeen":"2026-11-22T10:00:00Z"}`, ev.ID)
	if _, err := s.kv.Create(ctx, key, []byte(legacy)); err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(ctx, &ev, 8)
	if err != nil || c.First || c.ClaimedBy != 3 || c.Repeats != 1 {
		t.Fatalf("re-send against a legacy record: got %+v, %v; want a repeat of message 3", c, err)
	}
	// The repeat rewrote the record in the compact form, keeping the claim.
	e, err := s.kv.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := parseRecord(e.Value()); err != nil || got != (alertRecord{Seq: 3, Repeats: 1}) || e.Value()[0] != recordCompact {
		t.Fatalf("record after the repeat: %q (%+v, %v); want compact, seq 3, 1 repeat", e.Value(), got, err)
	}
	if c, err := s.Claim(ctx, &ev, 3); err != nil || !c.First {
		t.Fatalf("redelivery of the claiming message: got %+v, %v; want first", c, err)
	}
}
