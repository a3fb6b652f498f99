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
// records live as long as the findings stream keeps messages, or until
// bus.delivery_max_records newer ones pushed them out: either way a record
// outlives the redeliveries of its finding, which come within minutes.
func (b *Bus) Deliveries(ctx context.Context) (*Deliveries, error) {
	cfg := jetstream.KeyValueConfig{
		Bucket:      DeliveriesBucket,
		Description: "medic: findings delivered, one key per finding and sink (sinks.IdempotencyKey)",
		History:     1,
		TTL:         max(b.cfg.Retention, time.Hour),
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
		// A record is 83 bytes: the key bound below fills first.
		MaxBytes: b.cfg.MaxBytes,
	}
	// At most bus.delivery_max_records keys, the oldest dropped first
	// (kvbucket.go): a record is needed for minutes, not for the TTL.
	kv, err := b.BoundedKeyValue(ctx, cfg, b.cfg.DeliveryRecords())
	if err != nil {
		return nil, err
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
