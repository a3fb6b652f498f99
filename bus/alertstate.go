package bus

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/event"
)

// AlertStateBucket is the KV bucket of alert lifetimes.
const AlertStateBucket = "medic_alerts"

// AlertState remembers, for every Alertmanager alert medic processed, which
// events-stream message processed it, once per status: one key for the
// firing alert, one for its resolve. It is how medic notifies once per alert
// lifetime although Alertmanager re-sends a firing alert every
// repeat_interval, long after the events stream's duplicate window
// (bus.dedup_window) has forgotten its ID.
//
// The key is the event ID, which is already the alert's identity:
// sha256(source, label fingerprint, status, startsAt). Alertmanager keeps
// startsAt for the whole life of an alert, so every re-send maps to the same
// key, and the same alert firing again later (a new startsAt) does not.
//
// Replicas agree through KV Create, which fails when the key exists: exactly
// one message claims an alert. The claim names the message (its stream
// sequence), so a redelivery of that message after a failure or a crash
// still counts as the first and is processed again.
//
// Records expire with the bucket's TTL (bus.alert_state_ttl), counted from
// the last write: every re-send rewrites its alert's record, so a record
// lives as long as its alert keeps being re-sent plus the TTL. A per-key TTL
// (KV LimitMarkerTTL and KeyTTL) would add nothing, since every key has the
// same TTL, and the KV API cannot extend one (KeyTTL is fixed at Create;
// Update writes without it); it also needs nats-server 2.11 on an external
// NATS, while a bucket TTL works with any JetStream.
type AlertState struct {
	kv     jetstream.KeyValue
	logger *slog.Logger
}

// AlertClaim is the outcome of AlertState.Claim.
type AlertClaim struct {
	// First is true when the message should be processed and notified: it
	// claimed its alert's status, it is a redelivery of the message that
	// did, its event is not an alert medic tracks, or the state could not be
	// read (a possible duplicate beats a lost notification).
	First bool
	// ClaimedBy is the events-stream sequence of the message that holds the
	// claim; 0 when nothing was claimed.
	ClaimedBy uint64
	// Repeats counts the re-sends suppressed so far, this one included.
	Repeats int

	key string
	rev uint64
}

// alertRecord is the value of an alert's key: which message claimed the
// alert, and how many re-sends were suppressed since. The alert is the key
// and the last re-send is the KV entry's own time, so the record holds
// nothing else.
type alertRecord struct {
	Seq     uint64
	Repeats int
	// event is the ID a record written by an older medic names
	// (JSON); "" in the compact form, whose key already is the event ID.
	event string
}

// recordCompact starts a record in the compact binary form: the byte, then
// the claiming sequence and the repeats as uvarints. A JSON record (an
// older medic's) starts with '{'. The compact form is 3–7 bytes where the
// JSON one was ~150: with the key, the KV's headers and nats-server's
// framing a claim is 147 bytes on disk instead of 289 (measured), so the
// bucket's blocks, which nats-server caches in memory while it writes
// them, fill half as fast in a storm (docs/benchmarks.md, session 6). An
// older medic cannot decode it and processes the alert, as on any state
// error: during a rolling upgrade or after a downgrade a re-send may be
// notified once more, never lost.
const recordCompact = 1

// appendRecord encodes r in the compact form.
func appendRecord(dst []byte, r alertRecord) []byte {
	dst = append(dst, recordCompact)
	dst = binary.AppendUvarint(dst, r.Seq)
	return binary.AppendUvarint(dst, uint64(max(r.Repeats, 0)))
}

// legacyRecord is the JSON value medic wrote before the compact form;
// records of alerts that fired before an upgrade still hold it until they
// expire.
type legacyRecord struct {
	Event   string `json:"event"`
	Seq     uint64 `json:"seq"`
	Repeats int    `json:"repeats,omitempty"`
}

// parseRecord decodes either form.
func parseRecord(b []byte) (alertRecord, error) {
	if len(b) > 0 && b[0] == '{' {
		var l legacyRecord
		if err := json.Unmarshal(b, &l); err != nil {
			return alertRecord{}, err
		}
		return alertRecord{Seq: l.Seq, Repeats: l.Repeats, event: l.Event}, nil
	}
	if len(b) == 0 || b[0] != recordCompact {
		return alertRecord{}, fmt.Errorf("unknown record form (%d bytes)", len(b))
	}
	seq, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return alertRecord{}, errors.New("truncated sequence")
	}
	rep, m := binary.Uvarint(b[1+n:])
	if m <= 0 || rep > math.MaxInt32 {
		return alertRecord{}, errors.New("truncated or invalid repeat count")
	}
	return alertRecord{Seq: seq, Repeats: int(rep)}, nil
}

// AlertState opens (creating or updating) the alert-state bucket. It fails
// when bus.alert_state_ttl is 0: the caller must not ask for it then.
func (b *Bus) AlertState(ctx context.Context) (*AlertState, error) {
	if b.cfg.AlertStateTTL <= 0 {
		return nil, errors.New("bus.alert_state_ttl: is 0s (alert lifetimes are off)")
	}
	cfg := jetstream.KeyValueConfig{
		Bucket:      AlertStateBucket,
		Description: "medic: alerts processed, one key per alert and status (<status>.<event id>), rewritten by each re-send",
		History:     1,
		TTL:         b.cfg.AlertStateTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
		// A claim is 147 bytes on disk: the key bound below fills first.
		MaxBytes: b.cfg.MaxBytes,
	}
	// At most bus.alert_state_max_records keys, the oldest dropped first
	// (kvbucket.go): a re-send rewrites its alert's record, so the alerts
	// still being re-sent keep theirs.
	kv, err := b.BoundedKeyValue(ctx, cfg, b.cfg.AlertStateRecords())
	if err != nil {
		return nil, err
	}
	return &AlertState{kv: kv, logger: b.logger}, nil
}

// AlertKey is the key of ev's alert and status in the bucket; ok is false
// for events that have no lifetime to track: everything but Alertmanager
// alerts (Kubernetes triggers keep their own "already reported" state,
// manual and scheduled events are one-offs).
func AlertKey(ev *event.Event) (key string, ok bool) {
	if ev.Kind != event.KindPrometheusAlert || ev.ID == "" {
		return "", false
	}
	switch ev.Status {
	case event.StatusFiring, event.StatusResolved:
		return string(ev.Status) + "." + ev.ID, true
	}
	return "", false
}

// Claim decides whether the events-stream message seq carrying ev is the
// one that notifies for ev's alert in ev's status. A message that finds
// another message's claim is a repeat: its record is rewritten, which keeps
// it alive for another TTL, and First is false. On an error First is true.
func (s *AlertState) Claim(ctx context.Context, ev *event.Event, seq uint64) (AlertClaim, error) {
	key, ok := AlertKey(ev)
	if !ok {
		return AlertClaim{First: true}, nil
	}
	var buf [1 + 2*binary.MaxVarintLen64]byte
	mine := appendRecord(buf[:0], alertRecord{Seq: seq})
	// Create and Get race with a release or an expiry in between; each
	// retry follows a change made by someone else, so a few are plenty.
	for range 3 {
		rev, err := s.kv.Create(ctx, key, mine)
		if err == nil {
			return AlertClaim{First: true, ClaimedBy: seq, key: key, rev: rev}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return AlertClaim{First: true}, fmt.Errorf("claim alert %s: %w", key, err)
		}
		e, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // released or expired since Create: claim it again
		}
		if err != nil {
			return AlertClaim{First: true}, fmt.Errorf("read alert record %s: %w", key, err)
		}
		held, err := parseRecord(e.Value())
		if err != nil {
			return AlertClaim{First: true}, fmt.Errorf("decode alert record %s: %w", key, err)
		}
		if held.Seq == seq && (held.event == "" || held.event == ev.ID) {
			// A redelivery of the claiming message: its earlier attempt
			// failed or its process died before the ack.
			return AlertClaim{First: true, ClaimedBy: seq, Repeats: held.Repeats, key: key, rev: e.Revision()}, nil
		}
		held.Repeats++
		c := AlertClaim{ClaimedBy: held.Seq, Repeats: held.Repeats}
		if err := s.refresh(ctx, key, held, e.Revision()); err != nil {
			// The decision stands: the alert was claimed. Only its record
			// may now expire a TTL after the previous write.
			s.logger.Warn("could not refresh an alert's record; it may expire early", "key", key, "err", err)
		}
		return c, nil
	}
	return AlertClaim{First: true}, fmt.Errorf("claim alert %s: the record kept changing", key)
}

// refresh rewrites held unless someone wrote the key since rev: their write
// refreshed it as well.
func (s *AlertState) refresh(ctx context.Context, key string, held alertRecord, rev uint64) error {
	_, err := s.kv.Update(ctx, key, appendRecord(nil, held), rev)
	if err == nil || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return nil
	}
	return fmt.Errorf("refresh alert record %s: %w", key, err)
}

// Release gives up a claim whose message failed, so that a re-send of the
// alert can claim it if this message is dead-lettered; a redelivery of this
// message claims it again. It does nothing when the record changed since
// the claim (a repeat refreshed it): the claim then stays with this message,
// which its redelivery still recognises.
func (s *AlertState) Release(ctx context.Context, c AlertClaim) error {
	if !c.First || c.key == "" {
		return nil
	}
	err := s.kv.Delete(ctx, c.key, jetstream.LastRevision(c.rev))
	if err == nil || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return nil
	}
	return fmt.Errorf("release alert record %s: %w", c.key, err)
}
