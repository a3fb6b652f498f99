package bus

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
)

// The health stream holds one tiny message: the probe the healer writes
// while JetStream refuses to store, to learn when it stores again without
// putting anything into the work streams.
const (
	HealthStream  = "MEDIC_HEALTH"
	healthSubject = "medic.health.probe"
)

// healInterval is how often the healer looks again while the bus is not
// ready; healMinGap keeps a burst of kicks (every consumer noticing the same
// lost server) to one round.
const (
	healInterval = time.Second
	healMinGap   = 250 * time.Millisecond
)

// Reasons a store failure is counted under (medic_bus_store_errors_total).
const (
	reasonFull        = "full"         // the stream is at max_bytes with nothing processed to reclaim
	reasonNoResources = "no_resources" // the server's JetStream storage is exhausted (max_file_store, or the disk)
	reasonStoreFailed = "store_failed" // the store's write failed (ENOSPC, I/O error)
	reasonUnavailable = "unavailable"  // no stream answered: JetStream disabled, or the stream is gone
	reasonNoAnswer    = "no_answer"    // connected, but no answer within bus.publish_timeout
)

// A full stream counts as ready again with a tenth of its max_bytes free,
// or 1 MiB, whichever is less: room for a burst, so readiness does not flap
// with every message.
const (
	probeRoomFraction = 10
	probeRoomCeiling  = 1 << 20
)

const (
	storeErrorsMetric  = "medic_bus_store_errors_total"
	busReadyMetric     = "medic_bus_ready"
	busRecreatedMetric = "medic_bus_recreated_total"
)

// storeProblem is why a stream cannot store right now.
type storeProblem struct {
	reason string
	err    error
	since  time.Time
}

// healer keeps the bus truthful about whether it can store, and puts back
// what the NATS server lost. Everything medic creates on JetStream (its
// streams, the streams and key-value buckets other packages create through
// Bus.JetStream, and every durable consumer) is registered as an ensurer;
// after a reconnect, a "not found" or a failed store, the healer checks each
// and re-creates what is missing, in registration order (a stream before
// its consumers). A server that was wiped and restarted so comes back
// without a restart of medic.
type healer struct {
	kick chan struct{}
	done chan struct{} // closed to stop the loop
	wg   sync.WaitGroup

	// unready counts problems, so that the publish path, on which every
	// webhook waits, skips the lock while all is well.
	unready atomic.Int32

	mu       sync.Mutex
	ensurers []ensurer
	problems map[string]storeProblem // by stream
	lastHeal time.Time
	// healErr is why the last round could not put everything back.
	healErr error
	// checking is set from a reconnect until the next round has checked
	// what the server kept, and names what a round is re-creating: the bus
	// is not ready meanwhile.
	checking string

	storeErrors *prometheus.CounterVec
	recreated   *prometheus.CounterVec
}

// ensurer is one thing medic needs on JetStream.
type ensurer struct {
	key    string // what it is, e.g. "stream MEDIC_EVENTS"
	kind   string // stream, kv, consumer: the label of medic_bus_recreated_total
	exists func(ctx context.Context) (bool, error)
	create func(ctx context.Context) error
}

func newHealer() *healer {
	return &healer{
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		problems: map[string]storeProblem{},
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: storeErrorsMetric,
			Help: "Publishes JetStream refused to store, by stream and reason (full, no_resources, store_failed, unavailable, no_answer). Refused messages are answered 503 or retried, never dropped.",
		}, []string{"stream", "reason"}),
		recreated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: busRecreatedMetric,
			Help: "Streams, key-value buckets and consumers medic re-created after the NATS server lost them, by kind.",
		}, []string{"kind"}),
	}
}

// Collectors returns the bus' metrics: medic_bus_ready (1 while JetStream
// is connected and stores), medic_bus_store_errors_total and
// medic_bus_recreated_total.
func (b *Bus) Collectors() []prometheus.Collector {
	ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: busReadyMetric,
		Help: "1 while the bus is connected and JetStream stores; 0 while it cannot (/readyz says why).",
	}, func() float64 {
		if b.Healthy() != nil {
			return 0
		}
		return 1
	})
	return []prometheus.Collector{ready, b.heal.storeErrors, b.heal.recreated}
}

// register adds or replaces the ensurer with e's key.
func (h *healer) register(e ensurer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.ensurers {
		if h.ensurers[i].key == e.key {
			h.ensurers[i] = e
			return
		}
	}
	h.ensurers = append(h.ensurers, e)
}

func (h *healer) unregister(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.ensurers {
		if h.ensurers[i].key == key {
			h.ensurers = append(h.ensurers[:i], h.ensurers[i+1:]...)
			return
		}
	}
}

// kickHeal asks the healer for a round now, without waiting.
func (b *Bus) kickHeal() {
	select {
	case b.heal.kick <- struct{}{}:
	default:
	}
}

// startHealer runs the healing loop until Close.
func (b *Bus) startHealer() {
	b.heal.wg.Go(func() {
		t := time.NewTicker(healInterval)
		defer t.Stop()
		for {
			select {
			case <-b.heal.done:
				return
			case <-b.heal.kick:
			case <-t.C:
				if !b.needsHeal() {
					continue
				}
			}
			if gap := healMinGap - time.Since(b.heal.lastHealAt()); gap > 0 {
				select {
				case <-time.After(gap):
				case <-b.heal.done:
					return
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*b.cfg.PublishTimeout)
			b.healOnce(ctx)
			cancel()
		}
	})
}

func (b *Bus) stopHealer() {
	select {
	case <-b.heal.done:
	default:
		close(b.heal.done)
	}
	b.heal.wg.Wait()
}

func (h *healer) lastHealAt() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastHeal
}

// needsHeal reports whether the last round left something to do.
func (b *Bus) needsHeal() bool {
	b.heal.mu.Lock()
	defer b.heal.mu.Unlock()
	return len(b.heal.problems) > 0 || b.heal.healErr != nil
}

// healOnce re-creates what is missing, then probes the streams that could
// not store.
func (b *Bus) healOnce(ctx context.Context) {
	b.heal.mu.Lock()
	b.heal.lastHeal = time.Now()
	ensurers := append([]ensurer(nil), b.heal.ensurers...)
	b.heal.mu.Unlock()
	if b.embeddedStuck() {
		b.logger.Warn("the embedded NATS server has not answered for a while and its disk has room again (it stops after running out of disk); restarting it on the same store",
			"store_dir", b.cfg.StoreDir)
		// Unready until a round after the reconnect has checked everything.
		b.setChecking("restarting the embedded NATS server, which stopped answering")
		if err := b.restartEmbedded(); err != nil {
			b.setHealErr(fmt.Errorf("restart the embedded NATS server: %w", err))
			return
		}
		// A fresh server: what it does not answer now is marked again by
		// the publish that finds out.
		b.forgetNoAnswer()
		return // the reconnect asks for the next round
	}
	if !b.nc.IsConnected() {
		return // the connection's own handlers report and reconnect; a reconnect kicks again
	}
	var errs []error
	for _, e := range ensurers {
		ok, err := e.exists(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("look up %s: %w", e.key, err))
			continue
		}
		if ok {
			continue
		}
		b.setChecking("re-creating " + e.key + ", which the NATS server lost")
		if err := e.create(ctx); err != nil {
			errs = append(errs, fmt.Errorf("re-create %s: %w", e.key, err))
			continue
		}
		b.heal.recreated.WithLabelValues(e.kind).Inc()
		b.logger.Warn("the NATS server had lost it; re-created", "what", e.key)
	}
	b.setHealErr(errors.Join(errs...))
	b.setChecking("")
	b.probe(ctx)
}

// embeddedStuck reports whether the embedded server should be restarted:
// it has left publishes unanswered (no_answer) for longer than two publish
// timeouts, probes included, and the disk under its store has room.
// nats-server shuts its JetStream down when a write fails with ENOSPC and
// does not come back from that by itself, even once space is freed.
func (b *Bus) embeddedStuck() bool {
	if !b.embedded() {
		return false
	}
	b.heal.mu.Lock()
	stuck := false
	for _, p := range b.heal.problems {
		if p.reason == reasonNoAnswer && time.Since(p.since) > 2*b.cfg.PublishTimeout {
			stuck = true
		}
	}
	b.heal.mu.Unlock()
	return stuck && diskHasRoom(b.cfg.StoreDir)
}

// forgetNoAnswer drops the no_answer problems, after a restart of the
// embedded server.
func (b *Bus) forgetNoAnswer() {
	b.heal.mu.Lock()
	defer b.heal.mu.Unlock()
	for s, p := range b.heal.problems {
		if p.reason == reasonNoAnswer {
			delete(b.heal.problems, s)
			b.heal.unready.Add(-1)
		}
	}
}

// setChecking records what the healer is doing that keeps the bus unready.
func (b *Bus) setChecking(what string) {
	b.heal.mu.Lock()
	b.heal.checking = what
	b.heal.mu.Unlock()
}

// reconnected marks the bus unready until the healer checked what the
// server kept, and asks for that check now.
func (b *Bus) reconnected() {
	b.setChecking("reconnected; checking that the NATS server kept medic's streams and consumers")
	b.kickHeal()
}

// setHealErr records the outcome of a round, logging the transitions.
func (b *Bus) setHealErr(err error) {
	b.heal.mu.Lock()
	prev := b.heal.healErr
	b.heal.healErr = err
	b.heal.mu.Unlock()
	switch {
	case err != nil && prev == nil:
		b.logger.Warn("cannot put back what medic needs on JetStream; not ready until it can", "err", err)
	case err == nil && prev != nil:
		b.logger.Info("everything medic needs on JetStream is in place again")
	}
}

// storeFailed records that a publish to stream failed with err, when err
// says JetStream could not store.
func (b *Bus) storeFailed(stream string, err error) {
	reason := storeFailureReason(err)
	if reason == "" {
		return
	}
	b.heal.storeErrors.WithLabelValues(stream, reason).Inc()
	b.heal.mu.Lock()
	_, had := b.heal.problems[stream]
	if !had {
		b.heal.problems[stream] = storeProblem{reason: reason, err: err, since: time.Now()}
		b.heal.unready.Add(1)
	}
	b.heal.mu.Unlock()
	if !had {
		b.logger.Warn("JetStream cannot store; /readyz answers 503 until it can",
			"stream", stream, "reason", reason, "err", err)
	}
	if reason == reasonUnavailable || reason == reasonNoAnswer {
		b.kickHeal() // the stream may be gone, or JetStream disabled: look now
	}
}

// storeOK records that stream stored a message.
func (b *Bus) storeOK(stream string) {
	if b.heal.unready.Load() == 0 {
		return
	}
	b.heal.mu.Lock()
	p, had := b.heal.problems[stream]
	if had {
		delete(b.heal.problems, stream)
		b.heal.unready.Add(-1)
	}
	b.heal.mu.Unlock()
	if had {
		b.logger.Info("JetStream stores again; ready", "stream", stream, "reason_was", p.reason,
			"unready_for", time.Since(p.since).Round(time.Millisecond))
	}
}

// storeFailureReason classifies a publish error; "" means it says nothing
// about storage (a timeout, a cancelled request).
func storeFailureReason(err error) string {
	var se *storeError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &se):
		return se.reason
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return reasonUnavailable
	}
	return ""
}

// probe checks each stream that could not store: the server must store the
// health probe, and a full stream must have room again (after reclaiming
// what every consumer processed). It clears what recovered.
func (b *Bus) probe(ctx context.Context) {
	b.heal.mu.Lock()
	streams := make([]string, 0, len(b.heal.problems))
	reasons := make(map[string]string, len(b.heal.problems))
	for s, p := range b.heal.problems {
		streams = append(streams, s)
		reasons[s] = p.reason
	}
	b.heal.mu.Unlock()
	if len(streams) == 0 {
		return
	}
	sort.Strings(streams)
	msg := &nats.Msg{Subject: healthSubject, Data: []byte("probe")}
	if _, _, err := b.pub.publish(ctx, []*nats.Msg{msg}, []string{nuid.Next()}); err != nil {
		b.logger.Debug("JetStream still cannot store the health probe", "err", err)
		return
	}
	for _, stream := range streams {
		if reasons[stream] == reasonNoAnswer && b.embedded() {
			// The embedded server can leave one stream unanswering after
			// running out of disk while it still stores the probe: only a
			// publish to the stream, or a restart (embeddedStuck), says it
			// works again.
			continue
		}
		// Processed messages are purged only to make room, as a publish
		// into a full stream does (publishAll): otherwise they stay until
		// max_age.
		full := reasons[stream] == reasonFull || reasons[stream] == reasonNoResources
		if err := b.hasRoom(ctx, stream, full); err != nil {
			b.logger.Debug("stream still cannot store", "stream", stream, "err", err)
			continue
		}
		b.storeOK(stream)
	}
}

// hasRoom returns nil when stream exists and has room for more messages,
// after reclaiming what every consumer processed when reclaim is set.
func (b *Bus) hasRoom(ctx context.Context, stream string, reclaim bool) error {
	if reclaim {
		if _, err := b.reclaim(ctx, stream); err != nil {
			return err
		}
	}
	s, err := b.js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream info %s: %w", stream, err)
	}
	limit := info.Config.MaxBytes
	if limit <= 0 {
		return nil
	}
	room := min(limit/probeRoomFraction, probeRoomCeiling)
	if int64(info.State.Bytes)+room > limit {
		return fmt.Errorf("stream %s holds %d of %d bytes", stream, info.State.Bytes, limit)
	}
	return nil
}

// storeHealth is the bus' storage problems, for Healthy.
func (b *Bus) storeHealth() error {
	b.heal.mu.Lock()
	defer b.heal.mu.Unlock()
	if b.heal.healErr != nil {
		return fmt.Errorf("JetStream is missing what medic needs: %w", b.heal.healErr)
	}
	if b.heal.checking != "" {
		return errors.New(b.heal.checking)
	}
	if len(b.heal.problems) == 0 {
		return nil
	}
	parts := make([]string, 0, len(b.heal.problems))
	for stream, p := range b.heal.problems {
		parts = append(parts, fmt.Sprintf("stream %s cannot store since %s (%s): %v",
			stream, p.since.UTC().Format(time.RFC3339), p.reason, p.err))
	}
	sort.Strings(parts)
	return errors.New(strings.Join(parts, "; "))
}

// storeError is a PubAck error that says the message was not stored for a
// reason of storage: reason is one of the reason constants.
type storeError struct {
	reason string
	err    error
}

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// healingJS is the JetStream handle Bus.JetStream gives other packages: it
// registers every stream and key-value bucket they create, so the healer
// can put them back when the server loses them. Creation is retried while a
// cluster leaves the request unanswered (a leader election, replicas
// creating the same stream at once), and a stream or bucket that names no
// replica count gets the bus's (bus.replicas), so every package's state
// survives a node as the bus's own streams do.
type healingJS struct {
	jetstream.JetStream
	b *Bus
}

func (h healingJS) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (s jetstream.Stream, err error) {
	cfg.Replicas = h.b.replicasOr(cfg.Replicas)
	err = retryUnanswered(ctx, func(ctx context.Context) (err error) {
		s, err = h.JetStream.CreateStream(ctx, cfg)
		return err
	})
	if err == nil {
		h.b.ensureStream(cfg)
	}
	return s, err
}

func (h healingJS) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (s jetstream.Stream, err error) {
	cfg.Replicas = h.b.replicasOr(cfg.Replicas)
	err = retryUnanswered(ctx, func(ctx context.Context) (err error) {
		s, err = h.JetStream.CreateOrUpdateStream(ctx, cfg)
		return err
	})
	if err == nil {
		h.b.ensureStream(cfg)
	}
	return s, err
}

func (h healingJS) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (kv jetstream.KeyValue, err error) {
	cfg.Replicas = h.b.replicasOr(cfg.Replicas)
	err = retryUnanswered(ctx, func(ctx context.Context) (err error) {
		kv, err = h.JetStream.CreateKeyValue(ctx, cfg)
		return err
	})
	if err == nil {
		h.b.ensureKeyValue(cfg)
	}
	return kv, err
}

func (h healingJS) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (kv jetstream.KeyValue, err error) {
	cfg.Replicas = h.b.replicasOr(cfg.Replicas)
	err = retryUnanswered(ctx, func(ctx context.Context) (err error) {
		kv, err = h.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
		return err
	})
	if err == nil {
		h.b.ensureKeyValue(cfg)
	}
	return kv, err
}

// replicasOr is n, or bus.replicas when n is 0 (not set).
func (b *Bus) replicasOr(n int) int {
	if n > 0 {
		return n
	}
	return max(b.cfg.Replicas, 1)
}

// ensureStream registers a stream for re-creation.
func (b *Bus) ensureStream(cfg jetstream.StreamConfig) {
	b.heal.register(ensurer{
		key:  "stream " + cfg.Name,
		kind: "stream",
		exists: func(ctx context.Context) (bool, error) {
			_, err := b.js.Stream(ctx, cfg.Name)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return false, nil
			}
			return err == nil, err
		},
		create: func(ctx context.Context) error {
			_, err := b.js.CreateOrUpdateStream(ctx, cfg)
			return err
		},
	})
}

// ensureKeyValue registers a key-value bucket for re-creation. Its handles
// keep working once it is back: a bucket is a stream found by name.
func (b *Bus) ensureKeyValue(cfg jetstream.KeyValueConfig) {
	b.heal.register(ensurer{
		key:  "key-value bucket " + cfg.Bucket,
		kind: "kv",
		exists: func(ctx context.Context) (bool, error) {
			_, err := b.js.KeyValue(ctx, cfg.Bucket)
			if errors.Is(err, jetstream.ErrBucketNotFound) {
				return false, nil
			}
			return err == nil, err
		},
		create: func(ctx context.Context) error {
			_, err := b.js.CreateOrUpdateKeyValue(ctx, cfg)
			return err
		},
	})
}
