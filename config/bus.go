package config

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// BusConfig selects and tunes the bus (package bus takes it as bus.Config).
// The zero value is not valid; Default supplies the defaults.
type BusConfig struct {
	// URL of an external NATS server; empty runs an embedded one.
	URL string `yaml:"url"`
	// StoreDir holds the embedded server's JetStream files.
	StoreDir string `yaml:"store_dir"`
	// Listen, when set (host:port), lets other processes reach the embedded
	// server, e.g. the nats CLI; by default it accepts in-process clients only.
	Listen string `yaml:"listen"`
	// CredentialsFile for an external server (NATS .creds).
	CredentialsFile string `yaml:"credentials_file"`
	// Replicas of each stream on a NATS cluster.
	Replicas int `yaml:"replicas"`
	// DedupWindow is how long JetStream remembers event IDs. A retried
	// webhook, an Alertmanager HA peer or a second replica within it
	// publishes nothing new; a later re-send of an alert is stored and then
	// dropped by the alert's record (AlertStateTTL). Each ID costs the
	// embedded server about 110 bytes of heap for the whole window, so the
	// window times the storm's rate is memory held.
	DedupWindow time.Duration `yaml:"dedup_window"`
	// FindingsDedupWindow is how long JetStream remembers the findings'
	// message IDs (0: as DedupWindow). It only has to catch a publish the
	// engine retries within one attempt or right after it; a finding
	// published again later (its event redelivered after a crash or
	// ack_wait) is stored again and skipped by each sink's delivery record,
	// which is what holds a delivery to once across crashes and replicas.
	// Each ID costs the embedded server about 100 bytes of heap per sink
	// for the whole window, so a long one holds a storm's findings in a
	// pod's memory for nothing (docs/benchmarks.md, issue 14).
	FindingsDedupWindow time.Duration `yaml:"findings_dedup_window"`
	// AlertStateTTL is how long an alert's record outlives its last
	// re-send (alertstate.go); 0 turns alert lifetimes off.
	AlertStateTTL time.Duration `yaml:"alert_state_ttl"`
	// AlertStateMaxRecords bounds the alert-state bucket (one record per
	// alert and status). When it is full the record written longest ago
	// makes room; every re-send rewrites its alert's record, so an alert
	// still being re-sent keeps its own, and a forgotten alert's next
	// re-send is processed again (a possible second notification, never a
	// lost one). The bound is what keeps memory bounded: JetStream indexes
	// every key in the Go heap, about 100 bytes each in the embedded server,
	// for as long as the key lives (bus/kvbucket.go). 0: DefaultBucketRecords.
	AlertStateMaxRecords int64 `yaml:"alert_state_max_records"`
	// DeliveryMaxRecords bounds the delivery records (one per finding and
	// sink), the same way: the oldest go first, and a finding redelivered
	// after its record went could be sent twice. A record is needed for
	// minutes (a redelivery, a finding published again after a crash).
	// 0: DefaultBucketRecords.
	DeliveryMaxRecords int64 `yaml:"delivery_max_records"`
	// Retention bounds how long events and findings are kept for replay.
	Retention time.Duration `yaml:"retention"`
	// MaxBytes bounds each stream's size on disk. A full events or findings
	// stream refuses new messages (DiscardNew) after reclaiming what every
	// consumer has acknowledged: the intake answers 503 rather than
	// dropping unprocessed events to make room. It bounds the key-value
	// buckets that grow with alerts as well (medic_alerts, medic_deliveries,
	// medic_findings), where a full bucket drops its oldest records.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxDeliver is how many times a message is tried before it is
	// dead-lettered.
	MaxDeliver int `yaml:"max_deliver"`
	// Backoff is the delay before each redelivery after a failure.
	Backoff []time.Duration `yaml:"backoff"`
	// AckWait is how long a consumer may work on a message without
	// signalling progress before JetStream redelivers it.
	AckWait time.Duration `yaml:"ack_wait"`
	// PublishTimeout bounds how long a publish waits for JetStream's ack.
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// Compression encodes the payload of events and findings on their
	// streams: "s2" (the default) or "none" (plain JSON, for other programs
	// that read the streams). A consumer reads both, whatever this says.
	Compression string `yaml:"compression"`
}

// DefaultBucketRecords bounds each of the alert-state and delivery-record
// buckets unless bus.alert_state_max_records or bus.delivery_max_records
// says otherwise: about 10 MiB of the embedded server's heap when full
// (~100 bytes a key). A record is rewritten by each re-send of its alert, so
// 100,000 other alerts must arrive between two re-sends (Alertmanager's
// repeat_interval) for an alert to be forgotten.
const DefaultBucketRecords = 100_000

// minBucketRecords is the least bus.alert_state_max_records and
// bus.delivery_max_records accept: fewer would forget a record within the
// minutes it is needed in any burst worth the name.
const minBucketRecords = 1000

// Bus payload encodings (bus.compression).
const (
	CompressionS2   = "s2"
	CompressionNone = "none"
)

// Validate names the first invalid field.
func (c *BusConfig) Validate() error {
	switch {
	case c.URL == "" && c.StoreDir == "":
		return errors.New("bus.store_dir: required when bus.url is empty (embedded NATS)")
	case c.DedupWindow <= 0:
		return errors.New("bus.dedup_window: must be positive")
	case c.FindingsDedupWindow < 0:
		return errors.New("bus.findings_dedup_window: must not be negative (0: as bus.dedup_window)")
	case c.AlertStateTTL != 0 && c.AlertStateTTL < c.DedupWindow:
		return fmt.Errorf("bus.alert_state_ttl: must be 0s (off) or at least bus.dedup_window (%s)", c.DedupWindow)
	case c.AlertStateMaxRecords != 0 && c.AlertStateMaxRecords < minBucketRecords:
		return tooFewRecords("bus.alert_state_max_records", c.AlertStateMaxRecords)
	case c.DeliveryMaxRecords != 0 && c.DeliveryMaxRecords < minBucketRecords:
		return tooFewRecords("bus.delivery_max_records", c.DeliveryMaxRecords)
	case c.MaxDeliver < 1:
		return errors.New("bus.max_deliver: must be at least 1")
	case c.AckWait < time.Second:
		return errors.New("bus.ack_wait: must be at least 1s")
	case c.Replicas < 1 || c.Replicas > 5:
		return errors.New("bus.replicas: must be between 1 and 5")
	case c.PublishTimeout <= 0:
		return errors.New("bus.publish_timeout: must be positive")
	case c.Compression != CompressionS2 && c.Compression != CompressionNone:
		return fmt.Errorf("bus.compression: %q is not %q or %q", c.Compression, CompressionS2, CompressionNone)
	}
	for i, d := range c.Backoff {
		if d <= 0 {
			return fmt.Errorf("bus.backoff[%d]: must be positive", i)
		}
	}
	return nil
}

// FindingsWindow is the findings stream's duplicate window:
// FindingsDedupWindow, or DedupWindow when that is 0.
func (c *BusConfig) FindingsWindow() time.Duration {
	if c.FindingsDedupWindow > 0 {
		return c.FindingsDedupWindow
	}
	return c.DedupWindow
}

// tooFewRecords is the error for a bucket bound below minBucketRecords.
func tooFewRecords(field string, n int64) error {
	return fmt.Errorf("%s: %d is below %d (each record costs about 100 bytes of memory; 0 means the default, %d)", field, n, minBucketRecords, DefaultBucketRecords)
}

// AlertStateRecords is the alert-state bucket's bound:
// AlertStateMaxRecords, or DefaultBucketRecords when that is 0.
func (c *BusConfig) AlertStateRecords() int64 {
	return cmp.Or(c.AlertStateMaxRecords, DefaultBucketRecords)
}

// DeliveryRecords is the delivery-record bucket's bound: DeliveryMaxRecords,
// or DefaultBucketRecords when that is 0.
func (c *BusConfig) DeliveryRecords() int64 {
	return cmp.Or(c.DeliveryMaxRecords, DefaultBucketRecords)
}

// StoreDirFor returns the embedded bus's default store directory under a
// data folder.
func StoreDirFor(dataDir string) string { return filepath.Join(dataDir, "jetstream") }
