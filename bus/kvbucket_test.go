package bus

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/event"
)

// keyValueStream must make the stream nats.go's CreateKeyValue makes, but
// for the bound: the server's own view of two buckets, one made each way
// from the same KeyValueConfig, differs only in the name, the subjects,
// MaxMsgs and Discard. A nats.go upgrade that changes how a bucket is made
// fails here rather than in a KV call.
func TestKeyValueStreamMatchesNatsGo(t *testing.T) {
	t.Parallel()
	b := openBus(t, testConfig(t))
	ctx := context.Background()
	for i, tc := range []struct {
		name string
		cfg  jetstream.KeyValueConfig
	}{
		{"like medic_alerts", jetstream.KeyValueConfig{Description: "alerts", History: 1, TTL: 7 * 24 * time.Hour, Storage: jetstream.FileStorage, MaxBytes: 64 << 20}},
		{"short TTL, no limits", jetstream.KeyValueConfig{TTL: 30 * time.Second, Storage: jetstream.FileStorage}},
		{"history and value size", jetstream.KeyValueConfig{History: 5, MaxValueSize: 1024, Storage: jetstream.MemoryStorage}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			theirs, ours := tc.cfg, tc.cfg
			theirs.Bucket, ours.Bucket = fmt.Sprintf("natsgo_%d", i), fmt.Sprintf("medic_%d", i)
			if _, err := b.js.CreateKeyValue(ctx, theirs); err != nil {
				t.Fatalf("nats.go CreateKeyValue: %v", err)
			}
			if _, err := b.BoundedKeyValue(ctx, ours, 5000); err != nil {
				t.Fatalf("boundedKeyValue: %v", err)
			}
			want := streamConfig(t, b, "KV_"+theirs.Bucket)
			got := streamConfig(t, b, "KV_"+ours.Bucket)
			if got.MaxMsgs != 5000 || got.Discard != jetstream.DiscardOld {
				t.Errorf("bound: MaxMsgs %d, Discard %v; want 5000, DiscardOld", got.MaxMsgs, got.Discard)
			}
			if want.Discard != jetstream.DiscardNew || want.MaxMsgs != -1 {
				t.Errorf("nats.go now makes buckets with MaxMsgs %d, Discard %v: revisit kvbucket.go", want.MaxMsgs, want.Discard)
			}
			got.Name, got.Subjects, got.MaxMsgs, got.Discard = want.Name, want.Subjects, want.MaxMsgs, want.Discard
			if !reflect.DeepEqual(got, want) {
				t.Errorf("stream config differs from nats.go's bucket:\n got  %+v\n want %+v", got, want)
			}
			// And nats.go accepts it as a bucket.
			if _, err := b.js.KeyValue(ctx, ours.Bucket); err != nil {
				t.Errorf("nats.go does not open the bucket: %v", err)
			}
		})
	}
}

func streamConfig(t *testing.T, b *Bus, name string) jetstream.StreamConfig {
	t.Helper()
	s, err := b.js.Stream(context.Background(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	cfg := s.CachedInfo().Config
	cfg.Metadata = nil // the server stamps its version and API level
	return cfg
}

// A bounded bucket keeps its newest keys: past the bound the key written
// longest ago goes first, and rewriting a key (what every re-send of an
// alert does to its record) keeps it.
func TestBoundedBucketForgetsTheOldestFirst(t *testing.T) {
	t.Parallel()
	b := openBus(t, testConfig(t))
	ctx := context.Background()
	const bound = 1000
	kv, err := b.BoundedKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "bounded", History: 1, Storage: jetstream.FileStorage}, bound)
	if err != nil {
		t.Fatal(err)
	}
	key := func(i int) string { return fmt.Sprintf("k.%05d", i) }
	for i := range bound {
		if _, err := kv.Put(ctx, key(i), []byte{1}); err != nil {
			t.Fatalf("put %s: %v", key(i), err)
		}
	}
	// k.00000 and k.00001 are the oldest; rewrite k.00000 so it is the newest.
	if _, err := kv.Put(ctx, key(0), []byte{2}); err != nil {
		t.Fatal(err)
	}
	const more = 300
	for i := bound; i < bound+more; i++ {
		if _, err := kv.Put(ctx, key(i), []byte{1}); err != nil {
			t.Fatalf("put %s past the bound: %v (a full bucket must make room, not refuse)", key(i), err)
		}
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Values() != bound {
		t.Errorf("bucket holds %d records, want the bound %d", st.Values(), bound)
	}
	has := func(k string) bool {
		_, err := kv.Get(ctx, k)
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatalf("get %s: %v", k, err)
		}
		return err == nil
	}
	if !has(key(0)) {
		t.Error("the rewritten key was dropped; rewriting must keep a key")
	}
	for _, i := range []int{1, 2, more} {
		if has(key(i)) {
			t.Errorf("%s, among the oldest, is still there", key(i))
		}
	}
	for _, i := range []int{more + 1, bound, bound + more - 1} {
		if !has(key(i)) {
			t.Errorf("%s, among the newest, was dropped", key(i))
		}
	}
}

// A medic upgraded from one whose buckets nats.go made (unbounded,
// DiscardNew) keeps every record: the bucket is updated in place, and the
// alert it remembers is still a repeat afterwards.
func TestAlertStateBucketFromAnOlderMedicIsBoundedInPlace(t *testing.T) {
	t.Parallel()
	cfg := alertStateConfig(t)
	cfg.AlertStateMaxRecords = 2000
	b := openBus(t, cfg)
	ctx := context.Background()
	old, err := b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: AlertStateBucket, History: 1, TTL: cfg.AlertStateTTL, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	ev := testEvent("disk", event.StatusFiring)
	key, _ := AlertKey(&ev)
	if _, err := old.Create(ctx, key, appendRecord(nil, alertRecord{Seq: 7})); err != nil {
		t.Fatal(err)
	}

	s := openAlertState(t, b)
	sc := streamConfig(t, b, "KV_"+AlertStateBucket)
	if sc.MaxMsgs != 2000 || sc.Discard != jetstream.DiscardOld || sc.MaxAge != cfg.AlertStateTTL {
		t.Errorf("bucket not bounded in place: MaxMsgs %d, Discard %v, MaxAge %s", sc.MaxMsgs, sc.Discard, sc.MaxAge)
	}
	c, err := s.Claim(ctx, &ev, 8)
	if err != nil {
		t.Fatal(err)
	}
	if c.First || c.ClaimedBy != 7 {
		t.Errorf("claim after the upgrade = %+v, want a repeat of message 7 (the record was lost)", c)
	}
}

// The configured bounds reach the buckets medic opens.
func TestBucketsTakeTheirBoundsFromTheConfig(t *testing.T) {
	t.Parallel()
	cfg := alertStateConfig(t)
	cfg.AlertStateMaxRecords, cfg.DeliveryMaxRecords = 123_456, 65_432
	b := openBus(t, cfg)
	ctx := context.Background()
	openAlertState(t, b)
	if _, err := b.Deliveries(ctx); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int64{"KV_" + AlertStateBucket: 123_456, "KV_" + DeliveriesBucket: 65_432} {
		if got := streamConfig(t, b, name); got.MaxMsgs != want || got.Discard != jetstream.DiscardOld {
			t.Errorf("%s: MaxMsgs %d, Discard %v; want %d, DiscardOld", name, got.MaxMsgs, got.Discard, want)
		}
	}
}
