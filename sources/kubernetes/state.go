package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/bus/triggerstate"
)

// StateBucket is the JetStream KV bucket holding the detector's state,
// shared with the matching side's rate limits (bus/triggerstate, under
// their own key prefix).
const StateBucket = triggerstate.Bucket

// State is what the detector remembers between events, shared by replicas
// and kept across restarts when it lives in JetStream KV:
//
//   - which occurrences were already handled ("seen"), so a restart that
//     re-lists the cluster does not report them again;
//   - when an episode (an image that keeps failing to pull) was first seen,
//     so every replica counts fire_delay from the same instant.
//
// Every operation is idempotent for a given event ID, so two replicas
// handling the same occurrence, or a retry after a failed publish, reach the
// same decision.
type State interface {
	// Seen reports whether the occurrence id was already handled.
	Seen(ctx context.Context, id string) (bool, error)
	// MarkSeen records id as handled.
	MarkSeen(ctx context.Context, id string) error
	// FirstSeen returns when key was first recorded, recording now if absent.
	FirstSeen(ctx context.Context, key string, now time.Time) (time.Time, error)
	// Forget removes key (an episode ended).
	Forget(ctx context.Context, key string) error
}

// keyHash turns free text (namespace/kind/name) into a KV-safe token.
func keyHash(s string) string { return triggerstate.Hash(s) }

// MemoryState keeps state in the process: for tests and for a medic
// without JetStream. Entries older than ttl are dropped.
type MemoryState struct {
	mu    sync.Mutex
	ttl   time.Duration
	now   func() time.Time
	seen  map[string]time.Time
	since map[string]time.Time
}

// NewMemoryState returns an empty in-process state whose entries live ttl
// (measured with now, time.Now when nil).
func NewMemoryState(ttl time.Duration, now func() time.Time) *MemoryState {
	if now == nil {
		now = time.Now
	}
	return &MemoryState{ttl: ttl, now: now, seen: map[string]time.Time{}, since: map[string]time.Time{}}
}

func (m *MemoryState) prune() {
	cut := m.now().Add(-m.ttl)
	for k, t := range m.seen {
		if t.Before(cut) {
			delete(m.seen, k)
		}
	}
	for k, t := range m.since {
		if t.Before(cut) {
			delete(m.since, k)
		}
	}
}

// Seen implements State.
func (m *MemoryState) Seen(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune()
	_, ok := m.seen[id]
	return ok, nil
}

// MarkSeen implements State.
func (m *MemoryState) MarkSeen(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen[id] = m.now()
	return nil
}

// FirstSeen implements State.
func (m *MemoryState) FirstSeen(_ context.Context, key string, now time.Time) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.since[key]; ok {
		return t, nil
	}
	m.since[key] = now
	return now, nil
}

// Forget implements State.
func (m *MemoryState) Forget(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.since, key)
	return nil
}

// KVState keeps state in the JetStream KV bucket medic_trigger_state, so
// replicas share it and it survives restarts. Entries expire after the
// bucket's TTL (kubernetes.state_ttl).
type KVState struct {
	kv jetstream.KeyValue
}

// OpenKVState opens the bucket (triggerstate.Open: entries expire after
// ttl) and returns the state over it.
func OpenKVState(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (*KVState, error) {
	kv, err := triggerstate.Open(ctx, js, ttl, replicas)
	if err != nil {
		return nil, err
	}
	return NewKVState(kv), nil
}

// NewKVState returns the state over kv, a bucket triggerstate.Open opened.
func NewKVState(kv jetstream.KeyValue) *KVState {
	return &KVState{kv: kv}
}

func seenKey(id string) string   { return "seen." + id }
func sinceKey(key string) string { return "since." + key }

// Seen implements State.
func (s *KVState) Seen(ctx context.Context, id string) (bool, error) {
	_, err := s.kv.Get(ctx, seenKey(id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return false, nil
	default:
		return false, err
	}
}

// MarkSeen implements State.
func (s *KVState) MarkSeen(ctx context.Context, id string) error {
	_, err := s.kv.Put(ctx, seenKey(id), []byte{'1'})
	return err
}

// FirstSeen implements State; the first replica to record the key wins.
func (s *KVState) FirstSeen(ctx context.Context, key string, now time.Time) (time.Time, error) {
	k := sinceKey(key)
	for attempt := 0; attempt < 3; attempt++ {
		entry, err := s.kv.Get(ctx, k)
		if err == nil {
			t, perr := time.Parse(time.RFC3339Nano, string(entry.Value()))
			if perr == nil {
				return t, nil
			}
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
			return time.Time{}, err
		}
		if _, err := s.kv.Create(ctx, k, []byte(now.UTC().Format(time.RFC3339Nano))); err == nil {
			return now, nil
		}
	}
	return time.Time{}, fmt.Errorf("episode key %s: could not be read or created", k)
}

// Forget implements State.
func (s *KVState) Forget(ctx context.Context, key string) error {
	err := s.kv.Delete(ctx, sinceKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}
