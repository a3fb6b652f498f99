package bus

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// reclaimResult is the outcome of the last reclaim of a stream.
type reclaimResult struct {
	at    time.Time
	freed uint64
}

// reclaimReuse is how long a reclaim's outcome stands for the publishes
// that hit the full stream at the same time, so a burst of refused webhooks
// lists the consumers once rather than once each.
const reclaimReuse = 250 * time.Millisecond

// reclaim makes room in a full work stream. The streams keep messages by
// limits (for the dedup window after a restart and for inspection), so
// processed messages stay until max_age; once the stream is at max_bytes,
// those are what can go. For each consumer's filter subject it purges the
// messages below the ack floor of every consumer whose filter overlaps it:
// all of them were acknowledged by everyone who would ever receive them.
// It returns how many messages it removed; 0 means the stream is full of
// work not yet done, and publishing must be refused.
func (b *Bus) reclaim(ctx context.Context, stream string) (uint64, error) {
	b.reclaimMu.Lock()
	defer b.reclaimMu.Unlock()
	if last, ok := b.lastReclaim[stream]; ok && time.Since(last.at) < reclaimReuse {
		return last.freed, nil
	}
	freed, err := b.reclaimLocked(ctx, stream)
	if b.lastReclaim == nil {
		b.lastReclaim = map[string]reclaimResult{}
	}
	b.lastReclaim[stream] = reclaimResult{at: time.Now(), freed: freed}
	return freed, err
}

// reclaimConsumer is one filter of one consumer of a stream being reclaimed.
type reclaimConsumer struct {
	name, filter string
	floor        uint64 // stream sequence below which it acknowledged everything
}

func (b *Bus) reclaimLocked(ctx context.Context, stream string) (uint64, error) {
	s, err := b.js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("look up stream %s: %w", stream, err)
	}
	var all []reclaimConsumer
	lister := s.ListConsumers(ctx)
	for ci := range lister.Info() {
		filters := ci.Config.FilterSubjects
		if ci.Config.FilterSubject != "" {
			filters = append(filters, ci.Config.FilterSubject)
		}
		if len(filters) == 0 {
			filters = []string{">"}
		}
		for _, f := range filters {
			all = append(all, reclaimConsumer{name: ci.Name, filter: f, floor: ci.AckFloor.Stream})
		}
	}
	if err := lister.Err(); err != nil {
		return 0, fmt.Errorf("list consumers of %s: %w", stream, err)
	}
	before, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info %s: %w", stream, err)
	}
	// Whole blocks first. When every message the stream holds is on a
	// subject some consumer receives, everything below the lowest ack floor
	// was processed by every consumer that would ever get it, and a purge
	// by sequence alone drops those blocks without reading them. A purge by
	// subject (below) loads each block it covers (8 MiB buffers for these
	// streams) and writes a tombstone per message: in a storm that filled
	// the stream, it cost more memory and CPU than the work itself.
	var compacted uint64 // everything up to it is gone
	if lowest := lowestFloor(all); lowest >= before.State.FirstSeq && lowest > 0 {
		covered, err := b.consumersCoverStream(ctx, s, before, all)
		if err != nil {
			return 0, err
		}
		if covered {
			if err := s.Purge(ctx, jetstream.WithPurgeSequence(lowest+1)); err != nil {
				return 0, fmt.Errorf("purge processed messages of %s below sequence %d: %w", stream, lowest+1, err)
			}
			compacted = lowest
		}
	}
	done := map[string]bool{}
	slowest, slowestFloor := "", uint64(math.MaxUint64)
	for _, c := range all {
		if done[c.filter] {
			continue
		}
		done[c.filter] = true
		floor := uint64(math.MaxUint64)
		for _, o := range all {
			if subjectsOverlap(c.filter, o.filter) && o.floor < floor {
				floor = o.floor
				if floor < slowestFloor {
					slowest, slowestFloor = o.name, floor
				}
			}
		}
		if floor == 0 || floor < before.State.FirstSeq || floor <= compacted {
			continue
		}
		if err := s.Purge(ctx, jetstream.WithPurgeSubject(c.filter), jetstream.WithPurgeSequence(floor+1)); err != nil {
			return 0, fmt.Errorf("purge processed messages of %s on %s: %w", stream, c.filter, err)
		}
	}
	after, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info %s: %w", stream, err)
	}
	var freed uint64
	if before.State.Msgs > after.State.Msgs {
		freed = before.State.Msgs - after.State.Msgs
	}
	if freed > 0 {
		b.logger.Info("stream full: purged messages every consumer had processed", "stream", stream,
			"purged", freed, "bytes_before", before.State.Bytes, "bytes_after", after.State.Bytes)
	} else {
		// Nothing processed is left to remove: the stream is full of work
		// not yet done. Say who is behind, so the operator knows where to look.
		b.logger.Warn("stream full of unprocessed messages; refusing new ones until consumers catch up",
			"stream", stream, "messages", after.State.Msgs, "bytes", after.State.Bytes,
			"max_bytes", b.cfg.MaxBytes, "slowest_consumer", slowest)
	}
	return freed, nil
}

// lowestFloor is the lowest ack floor of the consumers; 0 without any.
func lowestFloor(all []reclaimConsumer) uint64 {
	if len(all) == 0 {
		return 0
	}
	lowest := uint64(math.MaxUint64)
	for _, c := range all {
		lowest = min(lowest, c.floor)
	}
	return lowest
}

// maxListedSubjects bounds the subjects consumersCoverStream lists: the
// findings stream has one per sink; a stream with more is not worth the
// listing and is purged by subject only.
const maxListedSubjects = 256

// consumersCoverStream reports whether every message in the stream is on a
// subject some consumer's filter matches: the stream's configured subjects
// are (the events stream: the engine takes medic.events.>), or else the
// subjects it holds now are (the findings stream: one consumer per sink).
func (b *Bus) consumersCoverStream(ctx context.Context, s jetstream.Stream, info *jetstream.StreamInfo, all []reclaimConsumer) (bool, error) {
	covers := func(subject string) bool {
		for _, c := range all {
			if server.SubjectMatchesFilter(subject, c.filter) {
				return true
			}
		}
		return false
	}
	configured := len(info.Config.Subjects) > 0
	for _, subj := range info.Config.Subjects {
		configured = configured && covers(subj)
	}
	if configured {
		return true, nil
	}
	if info.State.NumSubjects == 0 || info.State.NumSubjects > maxListedSubjects {
		return false, nil
	}
	held, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		return false, fmt.Errorf("list the subjects of stream %s: %w", info.Config.Name, err)
	}
	if len(held.State.Subjects) == 0 || uint64(len(held.State.Subjects)) < held.State.NumSubjects {
		return false, nil // paged: not all of them listed
	}
	for subj := range held.State.Subjects {
		if !covers(subj) {
			return false, nil
		}
	}
	return true, nil
}

// subjectsOverlap reports whether some subject matches both filters, which
// may hold the wildcards * (one token) and > (the rest).
func subjectsOverlap(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(at) && i < len(bt); i++ {
		x, y := at[i], bt[i]
		if x == ">" || y == ">" {
			return true
		}
		if x != y && x != "*" && y != "*" {
			return false
		}
	}
	return len(at) == len(bt)
}
