package interact

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KVFunc opens a JetStream key-value bucket, creating it when missing.
type KVFunc func(ctx context.Context, bucket string, ttl time.Duration) (jetstream.KeyValue, error)

// KVOpener opens buckets on js with the bus' replica count; entries expire
// after the bucket's ttl (0: never).
func KVOpener(js jetstream.JetStream, replicas int) KVFunc {
	return func(ctx context.Context, bucket string, ttl time.Duration) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:   bucket,
			TTL:      ttl,
			Storage:  jetstream.FileStorage,
			Replicas: max(replicas, 1),
		})
	}
}

// keyToken makes s usable as one KV key token.
func keyToken(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// createOnce stores key only when it is absent: the first caller wins.
func createOnce(ctx context.Context, kv jetstream.KeyValue, key string, val []byte) (bool, error) {
	_, err := kv.Create(ctx, key, val)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	return err == nil, err
}

// validID reports whether s looks like a finding ID: what a button value or
// a page URL may carry.
func validID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
