package slack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/event"
)

// Bucket is the JetStream KV bucket holding the Slack sinks' state: message
// references (ref.<sink>.<alert>), group threads (group.<sink>.<group>) and
// the thread index (thread.<channel>.<ts>) the interaction handler uses to
// find the finding a thread is about. It survives restarts.
const Bucket = "medic_slack"

// BucketTTL is how long an entry is kept: an alert resolving later than this
// after it fired gets a new message instead of an update.
const BucketTTL = 14 * 24 * time.Hour

// Ref is where one alert's message is.
type Ref struct {
	FindingID string `json:"findingId"`
	Channel   string `json:"channel"` // the channel ID Slack answered
	TS        string `json:"ts"`
	// ThreadTS is the group summary's ts when the message is in a group's
	// thread; empty otherwise (the message heads its own thread).
	ThreadTS string    `json:"threadTs,omitempty"`
	Group    string    `json:"group,omitempty"`
	PostedAt time.Time `json:"postedAt"`
	// Continued and Uploaded count the thread messages and files already
	// posted, so a redelivery after a crash finishes the job without
	// posting twice.
	Continued int `json:"continued,omitempty"`
	Uploaded  int `json:"uploaded,omitempty"`
	// ResolvedID is the resolved finding that updated the message;
	// ResolvedNoted says its thread reply was posted.
	ResolvedID    string `json:"resolvedId,omitempty"`
	ResolvedNoted bool   `json:"resolvedNoted,omitempty"`
}

// Thread returns the ts of the thread the message's replies go in.
func (r *Ref) Thread() string {
	if r.ThreadTS != "" {
		return r.ThreadTS
	}
	return r.TS
}

// ThreadEntry maps a thread to the finding it is about.
type ThreadEntry struct {
	FindingID string `json:"findingId"`
	Sink      string `json:"sink"`
}

var (
	errExists   = errors.New("key exists")
	errConflict = errors.New("key changed meanwhile")
)

// store is the little of a KV bucket the sink uses; kvStore is JetStream,
// memStore stands in when medic runs without a bus.
type store interface {
	get(ctx context.Context, key string) ([]byte, uint64, error) // nil, 0, nil when absent
	create(ctx context.Context, key string, val []byte) (uint64, error)
	update(ctx context.Context, key string, val []byte, rev uint64) (uint64, error)
	put(ctx context.Context, key string, val []byte) error
}

type kvStore struct{ kv jetstream.KeyValue }

func (s kvStore) get(ctx context.Context, key string) ([]byte, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	return e.Value(), e.Revision(), nil
}

func (s kvStore) create(ctx context.Context, key string, val []byte) (uint64, error) {
	rev, err := s.kv.Create(ctx, key, val)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, errExists
	}
	return rev, err
}

func (s kvStore) update(ctx context.Context, key string, val []byte, rev uint64) (uint64, error) {
	n, err := s.kv.Update(ctx, key, val, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return 0, errConflict
	}
	return n, err
}

func (s kvStore) put(ctx context.Context, key string, val []byte) error {
	_, err := s.kv.Put(ctx, key, val)
	return err
}

type memStore struct {
	mu  sync.Mutex
	rev uint64
	m   map[string]memEntry
}

type memEntry struct {
	val []byte
	rev uint64
}

func newMemStore() *memStore { return &memStore{m: map[string]memEntry{}} }

func (s *memStore) get(_ context.Context, key string) ([]byte, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		return nil, 0, nil
	}
	return e.val, e.rev, nil
}

func (s *memStore) create(_ context.Context, key string, val []byte) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; ok {
		return 0, errExists
	}
	s.rev++
	s.m[key] = memEntry{val, s.rev}
	return s.rev, nil
}

func (s *memStore) update(_ context.Context, key string, val []byte, rev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[key]; !ok || e.rev != rev {
		return 0, errConflict
	}
	s.rev++
	s.m[key] = memEntry{val, s.rev}
	return s.rev, nil
}

func (s *memStore) put(_ context.Context, key string, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rev++
	s.m[key] = memEntry{val, s.rev}
	return nil
}

func getJSON[T any](ctx context.Context, s store, key string) (*T, uint64, error) {
	raw, rev, err := s.get(ctx, key)
	if err != nil || raw == nil {
		return nil, 0, err
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, 0, err
	}
	return &v, rev, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs of strings, numbers and times
	}
	return b
}

// hashKey makes a KV key token from parts (KV keys allow few characters).
func hashKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// refKey names one alert's message for one sink: findings of the same alert
// (firing, then resolved) share their source, fingerprint, start and labels,
// not their ID. The fingerprint alone is not enough: it is the sender's
// (a hash Alertmanager computes, or whatever a webhook sent), and two
// different alerts that share one must not update each other's message.
// An event without a fingerprint is its own alert.
func refKey(sink string, f *event.Finding) string {
	ev := &f.Event
	if ev.Fingerprint == "" {
		return "ref." + sink + "." + hashKey("id", f.ID)
	}
	parts := []string{ev.Source, ev.Fingerprint, ev.StartsAt.UTC().Format(time.RFC3339Nano)}
	for _, k := range slices.Sorted(maps.Keys(ev.Labels)) {
		parts = append(parts, k+"="+ev.Labels[k])
	}
	return "ref." + sink + "." + hashKey(parts...)
}

// legacyRefKey is refKey as medic wrote it before the labels were part of
// it; read only, so an alert whose message was posted before the upgrade
// still updates it.
func legacyRefKey(sink string, f *event.Finding) string {
	ev := &f.Event
	return "ref." + sink + "." + hashKey(ev.Source, ev.Fingerprint, ev.StartsAt.UTC().Format(time.RFC3339Nano))
}

// threadKey names a thread for the thread index.
func threadKey(channel, ts string) string {
	return "thread." + safeToken(channel) + "." + safeToken(ts)
}

func safeToken(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// LookupThread returns the finding a Slack thread is about, from the thread
// index the Slack sinks keep in Bucket; ok is false for a thread medic did
// not start.
func LookupThread(ctx context.Context, kv jetstream.KeyValue, channel, threadTS string) (ThreadEntry, bool, error) {
	te, _, err := getJSON[ThreadEntry](ctx, kvStore{kv}, threadKey(channel, threadTS))
	if err != nil || te == nil {
		return ThreadEntry{}, false, err
	}
	return *te, true, nil
}
