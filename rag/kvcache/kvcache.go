// Package kvcache keeps AI answers in a JetStream key-value bucket with a
// TTL, so every medic replica shares them and a re-fired alert with the same
// evidence costs no second model call.
package kvcache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/rag"
)

// DefaultBucket is the bucket medic uses.
const DefaultBucket = "MEDIC_AI_ANSWERS"

// Cache is a rag.Cache in a KV bucket. Keys are the hex hashes from
// rag.CacheKey, valid KV keys as they are.
type Cache struct {
	kv jetstream.KeyValue
}

var _ rag.Cache = (*Cache)(nil)

// New creates or updates the bucket with the TTL.
func New(ctx context.Context, js jetstream.JetStream, bucket string, ttl time.Duration) (*Cache, error) {
	if ttl <= 0 {
		return nil, errors.New("kvcache: TTL must be positive")
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "medic: AI answers by evidence, model and knowledge-base version",
		TTL:         ttl,
		History:     1,
		Storage:     jetstream.FileStorage,
		MaxBytes:    256 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("kvcache: bucket %s: %w", bucket, err)
	}
	return &Cache{kv: kv}, nil
}

// Get implements rag.Cache.
func (c *Cache) Get(ctx context.Context, key string) (rag.Answer, bool, error) {
	e, err := c.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rag.Answer{}, false, nil
	}
	if err != nil {
		return rag.Answer{}, false, err
	}
	var a rag.Answer
	if err := json.Unmarshal(e.Value(), &a); err != nil {
		// A value from another version of medic: treat as a miss.
		return rag.Answer{}, false, nil
	}
	return a, true, nil
}

// Put implements rag.Cache.
func (c *Cache) Put(ctx context.Context, key string, a rag.Answer) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = c.kv.Put(ctx, key, b)
	return err
}
