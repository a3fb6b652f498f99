package bus

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go/jetstream"
)

// A message that kills medic while it is handled (an out-of-memory kill on
// a giant event, a fatal runtime error, a crash in an action's goroutine)
// comes back after every restart, and takes medic down again: a crash loop
// in which nothing else behind it is finished either. JetStream's delivery
// count would catch it on its own, but with the embedded server every start
// resets the consumer to its ack floor (releaseStalePending), and a reset
// forgets the counts. So medic keeps its own count, in the store folder
// beside JetStream's data: how many processes in a row ended without a
// clean stop while the consumer's ack floor stood at the same message. The
// oldest message above that floor is the one each of them died on; after
// bus.max_deliver such restarts it is parked without being run again.
//
// A clean stop (Consumer.Stop, the SIGTERM path) clears the count, so
// rolling restarts and an operator restarting medic while the engine waits
// for a full stream do not park anything. With an external NATS nothing is
// reset and JetStream's own delivery count reaches bus.max_deliver.

// restartRecord is what the store folder remembers for one consumer.
type restartRecord struct {
	// AckFloor is the consumer's ack floor (stream sequence) when a
	// process started with deliveries its predecessor never finished.
	AckFloor uint64 `json:"ack_floor"`
	// Restarts counts the processes in a row that started so.
	Restarts int `json:"restarts"`
}

// restartRecordDir holds one record per consumer; it is a sibling of
// nats-server's own "jetstream" folder, which it never reads.
const restartRecordDir = "medic-restarts"

func (b *Bus) restartRecordPath(durable string) string {
	return filepath.Join(b.cfg.StoreDir, restartRecordDir, token(durable)+".json")
}

// countUncleanRestart notes that this process starts with deliveries the
// previous one left unfinished (pending) above ackFloor, and returns how
// many processes in a row did so at this floor. Without pending deliveries
// the record is removed and the count is 0.
func (b *Bus) countUncleanRestart(durable string, ackFloor uint64, pending bool) (int, error) {
	path := b.restartRecordPath(durable)
	if !pending {
		return 0, removeRecord(path)
	}
	var rec restartRecord
	switch data, err := os.ReadFile(path); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("read restart record: %w", err)
	default:
		// A record that cannot be read counts as none: the worst case is
		// one more delivery of a message that crashes medic.
		_ = json.Unmarshal(data, &rec)
	}
	if rec.AckFloor == ackFloor {
		rec.Restarts++
	} else {
		rec = restartRecord{AckFloor: ackFloor, Restarts: 1}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("encode restart record: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return 0, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	// Written beside and renamed: a crash mid-write leaves the old record.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return 0, fmt.Errorf("write restart record: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("write restart record: %w", err)
	}
	return rec.Restarts, nil
}

// clearUncleanRestarts forgets the consumer's count: the process stops
// cleanly, so whatever it leaves pending did not kill it.
func (b *Bus) clearUncleanRestarts(durable string) {
	if !b.embedded() {
		return
	}
	if err := removeRecord(b.restartRecordPath(durable)); err != nil {
		b.logger.Warn("clear restart record", "consumer", durable, "err", err)
	}
}

func removeRecord(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove restart record: %w", err)
	}
	return nil
}

// firstAbove returns the stream sequence of the consumer's oldest message
// above ackFloor: the one every process of a crash loop was handling.
func (b *Bus) firstAbove(ctx context.Context, cfg ConsumerConfig, ackFloor uint64) (uint64, error) {
	s, err := b.js.Stream(ctx, cfg.Stream)
	if err != nil {
		return 0, fmt.Errorf("look up stream %s: %w", cfg.Stream, err)
	}
	m, err := s.GetMsg(ctx, ackFloor+1, jetstream.WithGetMsgSubject(cmp.Or(cfg.FilterSubject, ">")))
	if err != nil {
		return 0, fmt.Errorf("find the first message above the ack floor %d: %w", ackFloor, err)
	}
	return m.Sequence, nil
}
