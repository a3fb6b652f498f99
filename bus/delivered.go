package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DeliveriesBucket is the KV bucket of delivery records.
const DeliveriesBucket = "medic_deliveries"

// Deliveries records which findings each sink has delivered, so that a
// finding redelivered by JetStream (medic crashed after the sink sent it and
// before the ack reached the server) is not sent again. The record is
// written after a successful send and checked before sending; what remains
// is the window between a send and its record, a few milliseconds, which
// the Idempotency-Key a sink sends lets the receiver close.
type Deliveries struct {
	kv jetstream.KeyValue
}

// Deliveries opens (creating or updating) the delivery-record bucket. Its
// records live as long as the findings stream keeps messages, so a record
// outlives every redelivery of its finding.
func (b *Bus) Deliveries(ctx context.Context) (*Deliveries, error) {
	cfg := jetstream.KeyValueConfig{
		Bucket:      DeliveriesBucket,
		Description: "medic: findings delivered, one key per finding and sink (sinks.IdempotencyKey)",
		History:     1,
		TTL:         max(b.cfg.Retention, time.Hour),
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
		// A record is 83 bytes: this is room for millions, and a full
		// bucket only costs the protection (Record fails and is logged),
		// never a delivery.
		MaxBytes: b.cfg.MaxBytes,
	}
	// Through JetStream(): retried while a cluster leaves the request
	// unanswered, and re-created by the healer if the server loses it.
	kv, err := b.JetStream().CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create or update KV bucket %s: %w", DeliveriesBucket, err)
	}
	return &Deliveries{kv: kv}, nil
}

// Delivered reports whether a delivery was recorded under key.
func (d *Deliveries) Delivered(ctx context.Context, key string) (bool, error) {
	var found bool
	err := retryUnanswered(ctx, func(ctx context.Context) error {
		_, err := d.kv.Get(ctx, key)
		found = err == nil
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("read delivery record %s: %w", key, err)
	}
	return found, nil
}

// Record records a delivery under key. The record is the key alone: the
// time of the delivery is the KV entry's own, and an empty value keeps a
// record at 83 bytes on disk (a timestamp made it 113) in a bucket that a
// storm writes once per finding and sink.
func (d *Deliveries) Record(ctx context.Context, key string) error {
	err := retryUnanswered(ctx, func(ctx context.Context) error {
		_, err := d.kv.Put(ctx, key, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("write delivery record %s: %w", key, err)
	}
	return nil
}
