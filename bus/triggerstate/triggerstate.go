// Package triggerstate keeps the playbook triggers' shared state in the
// JetStream KV bucket medic_trigger_state: rate-limit claims, written by the
// matching side (playbooks.Engine) for every source, and the Kubernetes
// detector's own records ("already reported" occurrences, episodes), which
// sources/kubernetes keeps under its own key prefixes in the same bucket.
//
// It sits below both sides: it knows neither events nor triggers, only
// keys, event IDs and windows, so the engine and the detector reach the same
// answers from the same records.
package triggerstate

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

// Bucket is the JetStream KV bucket holding the trigger state.
const Bucket = "medic_trigger_state"

// Open creates or updates the bucket (history 1, file storage, entries
// expire after ttl: kubernetes.state_ttl) and returns it.
func Open(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	if replicas < 1 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "medic trigger state: rate limits, reported Kubernetes occurrences, episodes",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create or update KV bucket %s: %w", Bucket, err)
	}
	return kv, nil
}

// Hash turns free text (a subject, label values) into a KV-safe token.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}

// Limiter decides rate limits. Admit reports whether eventID may fire for
// key: yes when no other event claimed key within window before now
// (eventID then claims it), or when eventID itself holds the claim. The
// answer for one event ID does not change on a retry or a redelivery, so a
// redelivered event is neither counted twice nor lost.
type Limiter interface {
	Admit(ctx context.Context, key, eventID string, window time.Duration, now time.Time) (bool, error)
}

type claim struct {
	Event string    `json:"event"`
	At    time.Time `json:"at"`
}

// admits applies a claim found in state.
func (c claim) admits(eventID string, window time.Duration, now time.Time) bool {
	return c.Event == eventID || !now.Before(c.At.Add(window))
}

// Limits is the Limiter over the bucket. Windows longer than the bucket's
// TTL are cut to it: the claim is gone after that anyway.
type Limits struct {
	kv  jetstream.KeyValue
	ttl time.Duration
}

// NewLimits returns the limiter over kv (from Open with ttl).
func NewLimits(kv jetstream.KeyValue, ttl time.Duration) *Limits {
	return &Limits{kv: kv, ttl: ttl}
}

func limitKey(key string) string { return "limit." + key }

// MaxWindow is the longest window Admit applies: the bucket's TTL.
func (s *Limits) MaxWindow() time.Duration { return s.ttl }

// Admit implements Limiter with compare-and-set, so two replicas racing for
// the same key agree: one claim wins and the other reads it.
func (s *Limits) Admit(ctx context.Context, key, eventID string, window time.Duration, now time.Time) (bool, error) {
	if s.ttl > 0 {
		window = min(window, s.ttl)
	}
	k := limitKey(key)
	val, err := json.Marshal(claim{Event: eventID, At: now.UTC()})
	if err != nil {
		return false, fmt.Errorf("encode rate-limit claim %s: %w", k, err)
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
			return false, fmt.Errorf("read rate-limit claim %s: %w", k, err)
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

// Memory is the Limiter in the process: for tests and for tools without
// JetStream (medic playbooks test). Claims older than ttl are dropped.
type Memory struct {
	mu     sync.Mutex
	ttl    time.Duration
	claims map[string]claim
}

// NewMemory returns an empty in-process limiter whose claims live ttl.
func NewMemory(ttl time.Duration) *Memory {
	return &Memory{ttl: ttl, claims: map[string]claim{}}
}

// MaxWindow is the longest window Admit applies: the claims' ttl.
func (m *Memory) MaxWindow() time.Duration { return m.ttl }

// Admit implements Limiter.
func (m *Memory) Admit(_ context.Context, key, eventID string, window time.Duration, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ttl > 0 {
		window = min(window, m.ttl)
		for k, c := range m.claims {
			if c.At.Before(now.Add(-m.ttl)) {
				delete(m.claims, k)
			}
		}
	}
	if c, ok := m.claims[key]; ok {
		if c.Event == eventID {
			return true, nil
		}
		if !c.admits(eventID, window, now) {
			return false, nil
		}
	}
	m.claims[key] = claim{Event: eventID, At: now}
	return true, nil
}
