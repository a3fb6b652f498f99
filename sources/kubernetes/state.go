package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StateBucket is the JetStream KV bucket holding the detector's state.
const StateBucket = "medic_trigger_state"

// State is what the detector remembers between events, shared by replicas
// and kept across restarts when it lives in JetStream KV:
//
//   - which occurrences were already handled ("seen"), so a restart that
//     re-lists the cluster does not report them again;
//   - rate-limit claims: which event fired a trigger for a subject, when;
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
	// Admit reports whether eventID may fire for key: yes when no event
	// claimed key within window before now (eventID then claims it), or
	// when eventID itself holds the claim.
	Admit(ctx context.Context, key, eventID string, window time.Duration, now time.Time) (bool, error)
	// FirstSeen returns when key was first recorded, recording now if absent.
	FirstSeen(ctx context.Context, key string, now time.Time) (time.Time, error)
	// Forget removes key (an episode ended).
	Forget(ctx context.Context, key string) error
}

type claim struct {
	Event string    `json:"event"`
	At    time.Time `json:"at"`
}

// decide applies a rate-limit claim found in state.
func (c claim) admits(eventID string, window time.Duration, now time.Time) bool {
	return c.Event == eventID || !now.Before(c.At.Add(window))
}

// keyHash turns free text (namespace/kind/name) into a KV-safe token.
func keyHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}

// MemoryState keeps state in the process: for tests and for a medic
// without JetStream. Entries older than ttl are dropped.
type MemoryState struct {
	mu     sync.Mutex
	ttl    time.Duration
	now    func() time.Time
	seen   map[string]time.Time
	claims map[string]claim
	since  map[string]time.Time
}

// NewMemoryState returns an empty in-process state whose entries live ttl
// (measured with now, time.Now when nil).
func NewMemoryState(ttl time.Duration, now func() time.Time) *MemoryState {
	if now == nil {
		now = time.Now
	}
	return &MemoryState{ttl: ttl, now: now, seen: map[string]time.Time{}, claims: map[string]claim{}, since: map[string]time.Time{}}
}

func (m *MemoryState) prune() {
	cut := m.now().Add(-m.ttl)
	for k, t := range m.seen {
		if t.Before(cut) {
			delete(m.seen, k)
		}
	}
	for k, c := range m.claims {
		if c.At.Before(cut) {
			delete(m.claims, k)
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

// Admit implements State.
func (m *MemoryState) Admit(_ context.Context, key, eventID string, window time.Duration, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.claims[key]; ok && !c.admits(eventID, window, now) {
		return false, nil
	} else if ok && c.Event == eventID {
		return true, nil
	}
	m.claims[key] = claim{Event: eventID, At: now}
	return true, nil
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

// OpenKVState creates or updates the bucket (history 1, file storage,
// entries expire after ttl) and returns the state over it.
func OpenKVState(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (*KVState, error) {
	if replicas < 1 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      StateBucket,
		Description: "medic Kubernetes trigger state: rate limits, reported occurrences, episodes",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create or update KV bucket %s: %w", StateBucket, err)
	}
	return &KVState{kv: kv}, nil
}

func seenKey(id string) string   { return "seen." + id }
func sinceKey(key string) string { return "since." + key }
func limitKey(key string) string { return "limit." + key }

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

// Admit implements State with compare-and-set, so two replicas racing for
// the same subject agree: one claim wins and the other reads it.
func (s *KVState) Admit(ctx context.Context, key, eventID string, window time.Duration, now time.Time) (bool, error) {
	k := limitKey(key)
	val, err := json.Marshal(claim{Event: eventID, At: now.UTC()})
	if err != nil {
		return false, err
	}
	for attempt := 0; attempt < 3; attempt++ {
		entry, err := s.kv.Get(ctx, k)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
			if _, err := s.kv.Create(ctx, k, val); err == nil {
				return true, nil
			}
			continue // created meanwhile by another replica: read it
		case err != nil:
			return false, err
		}
		var c claim
		if err := json.Unmarshal(entry.Value(), &c); err != nil {
			c = claim{} // unreadable: treat as expired
		}
		if c.Event == eventID {
			return true, nil
		}
		if !c.admits(eventID, window, now) {
			return false, nil
		}
		if _, err := s.kv.Update(ctx, k, val, entry.Revision()); err == nil {
			return true, nil
		}
		// Lost the race to another replica: read the winner's claim.
	}
	return false, fmt.Errorf("rate-limit key %s: kept changing under concurrent updates", k)
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
