package kvcache_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/kvcache"
)

// OpenBus starts an embedded JetStream for a test.
func openBus(t *testing.T) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Config{
		StoreDir: t.TempDir(), Replicas: 1, DedupWindow: time.Minute, Retention: time.Hour, MaxBytes: 64 << 20,
		MaxDeliver: 3, Backoff: []time.Duration{time.Second}, AckWait: 2 * time.Second, PublishTimeout: 2 * time.Second, Compression: "s2",
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	b := openBus(t)
	c, err := kvcache.New(ctx, b.JetStream(), kvcache.DefaultBucket, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key := rag.CacheKey([]rag.Message{{Role: "user", Content: "x"}}, "m", 100, "v1")
	if _, ok, err := c.Get(ctx, key); ok || err != nil {
		t.Fatalf("empty cache: %v %v", ok, err)
	}
	want := rag.Answer{Text: "because", Model: "m", KBVersion: "v1", Citations: []rag.Citation{{N: 1, Source: "a.md", Title: "A"}},
		Redacted: rag.Redaction{"bearer token": 2}, CreatedAt: time.Unix(5, 0).UTC()}
	if err := c.Put(ctx, key, want); err != nil {
		t.Fatal(err)
	}
	// Another replica (another Cache on the same bucket) sees it.
	c2, err := kvcache.New(ctx, b.JetStream(), kvcache.DefaultBucket, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := c2.Get(ctx, key)
	if err != nil || !ok || got.Text != want.Text || got.Citations[0].Source != "a.md" || got.Redacted.Total() != 2 || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("got %+v %v %v", got, ok, err)
	}
	kv, err := b.JetStream().KeyValue(ctx, kvcache.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil || st.TTL() != time.Hour {
		t.Errorf("bucket TTL %v (%v)", st.TTL(), err)
	}
}

func TestKeysDiffer(t *testing.T) {
	m := []rag.Message{{Role: "user", Content: "evidence"}}
	base := rag.CacheKey(m, "m", 100, "v1")
	for name, k := range map[string]string{
		"evidence": rag.CacheKey([]rag.Message{{Role: "user", Content: "other evidence"}}, "m", 100, "v1"),
		"model":    rag.CacheKey(m, "m2", 100, "v1"),
		"kb":       rag.CacheKey(m, "m", 100, "v2"),
		"tokens":   rag.CacheKey(m, "m", 200, "v1"),
	} {
		if k == base {
			t.Errorf("%s change keeps the key", name)
		}
	}
}
