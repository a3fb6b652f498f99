package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A key-value bucket is a stream. nats.go's CreateKeyValue makes it with no
// bound on how many keys it holds (MaxMsgs -1) and refuses writes once it is
// full (DiscardNew). For medic's buckets with one key per alert or per
// finding (medic_alerts, medic_deliveries, and medic_findings, which keeps
// whole findings for the finding page) that leaves the process's memory
// unbounded: JetStream indexes every subject a stream holds (its per-subject
// index and each block's subject state), about 100 bytes of Go heap per key
// in the embedded server, for as long as the key lives: a week for an
// alert's record. A storm of a million distinct alerts would hold some
// 200 MiB there, in a pod whose limit is 256; medic_findings would fill
// the disk as well.
//
// So medic makes these buckets' streams itself, as nats.go would, with two
// changes: MaxMsgs bounds the keys (one message per key, History 1), and
// DiscardOld makes room by dropping the oldest message, the record written
// longest ago, instead of refusing the new one. Every re-send of an alert
// rewrites its record, so the alerts still being re-sent stay and the ones
// long gone are forgotten first; the price of forgetting one is a possible
// second notification for it, never a lost one.

// keyValueStream is the stream nats.go's CreateKeyValue makes for cfg
// (jetstream.prepareKeyValueConfig, nats.go v1.4x; TestKeyValueStreamMatchesNatsGo
// compares the two field by field), bounded to maxKeys messages with
// DiscardOld. It covers what medic's buckets use: no mirror, sources,
// republish, compression or per-key TTLs.
func keyValueStream(cfg jetstream.KeyValueConfig, maxKeys int64) jetstream.StreamConfig {
	history := int64(max(cfg.History, 1))
	maxBytes := cfg.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	maxValue := cfg.MaxValueSize
	if maxValue == 0 {
		maxValue = -1
	}
	// nats.go: a bucket's duplicate window is 2 minutes, or its TTL when
	// shorter. A key-value write carries no message ID, so it holds nothing.
	dupes := 2 * time.Minute
	if cfg.TTL > 0 && cfg.TTL < dupes {
		dupes = cfg.TTL
	}
	return jetstream.StreamConfig{
		Name:              "KV_" + cfg.Bucket,
		Description:       cfg.Description,
		Subjects:          []string{"$KV." + cfg.Bucket + ".>"},
		MaxMsgsPerSubject: history,
		MaxBytes:          maxBytes,
		MaxAge:            cfg.TTL,
		MaxMsgSize:        maxValue,
		Storage:           cfg.Storage,
		Replicas:          cfg.Replicas,
		Placement:         cfg.Placement,
		AllowRollup:       true,
		DenyDelete:        true,
		Duplicates:        dupes,
		MaxMsgs:           maxKeys,
		MaxConsumers:      -1,
		AllowDirect:       true,
		Discard:           jetstream.DiscardOld,
		Metadata:          cfg.Metadata,
	}
}

// BoundedKeyValue creates or updates the bucket cfg describes, holding at
// most maxKeys keys (keyValueStream), and returns its handle. An existing
// bucket made by an older medic (unbounded, DiscardNew) is updated in
// place: nothing it holds is lost, and the bound applies from then on.
// Through JetStream(): retried while a cluster leaves the request
// unanswered, and the stream is re-created by the healer if the server
// loses it (a bucket is a stream found by name, so handles keep working).
func (b *Bus) BoundedKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig, maxKeys int64) (jetstream.KeyValue, error) {
	cfg.Replicas = b.replicasOr(cfg.Replicas) // 0: bus.replicas
	js := b.JetStream()
	if _, err := js.CreateOrUpdateStream(ctx, keyValueStream(cfg, maxKeys)); err != nil {
		return nil, fmt.Errorf("create or update KV bucket %s: %w", cfg.Bucket, err)
	}
	var kv jetstream.KeyValue
	err := retryUnanswered(ctx, func(ctx context.Context) (err error) {
		kv, err = js.KeyValue(ctx, cfg.Bucket)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}
