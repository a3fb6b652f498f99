package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Delivery is one message handed to a Handler.
type Delivery struct {
	Subject string
	Data    []byte
	Header  nats.Header
	// Attempt counts deliveries of this message, starting at 1.
	Attempt int
	// StreamSeq is the message's sequence in its stream.
	StreamSeq uint64
}

// Handler processes one message. Returning nil acks it. An error is retried
// with back-off until MaxDeliver, then dead-lettered with the error as the
// reason; wrap it with Permanent to dead-letter at once.
type Handler func(ctx context.Context, d *Delivery) error

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying (a message that cannot be
// decoded will not decode on the tenth try either).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// ConsumerConfig describes one durable consumer.
type ConsumerConfig struct {
	Stream        string
	Durable       string
	FilterSubject string
	// Workers handle messages concurrently; 1 keeps them in stream order.
	Workers int
	// MaxAckPending bounds the messages handed out and not yet acked.
	MaxAckPending int
	// YieldToIntake, when positive, makes each worker wait before a message
	// until no trigger's Publish is in flight, for this long at most, so
	// that webhook senders are answered first (see intakeGate).
	YieldToIntake time.Duration
	// OnDeadLetter, if set, is called after a message was dead-lettered.
	OnDeadLetter func(d *Delivery, reason string)
}

// Consumer runs a Handler over a durable consumer.
type Consumer struct {
	bus *Bus
	cfg ConsumerConfig
	jc  jetstream.ConsumerConfig
	// ccMu guards cc, which the healer replaces when it re-creates the
	// consumer on a server that lost it.
	ccMu sync.Mutex
	cc   jetstream.ConsumeContext
	work chan jetstream.Msg
	wg   sync.WaitGroup
	stop sync.Once
	// stopping ends fetching; handlerCtx is what handlers see, cancelled
	// only when they overstay the grace period on shutdown.
	stopping      context.Context
	stopFetching  context.CancelFunc
	handlerCtx    context.Context
	cancelHandler context.CancelFunc
	// crashSuspect is the stream sequence of the message that was in
	// flight in each of the last crashRestarts processes, all of which
	// died without a clean stop (crashloop.go); 0 when there is none.
	crashSuspect  atomic.Uint64
	crashRestarts int
}

// shutdownGrace is how long Stop lets running handlers finish.
const shutdownGrace = 10 * time.Second

// streamFullRetry is how long a handler whose output a full stream refused
// waits before it tries again.
const streamFullRetry = 250 * time.Millisecond

// Consume creates or updates the durable consumer and starts handling its
// messages until Stop or Close.
func (b *Bus) Consume(ctx context.Context, cfg ConsumerConfig, h Handler) (*Consumer, error) {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.MaxAckPending < cfg.Workers {
		// A few messages queued per worker keep every worker busy; more
		// would only hold back work another replica could take (256 for
		// the engine's default 16 workers and for one sink worker).
		cfg.MaxAckPending = max(cfg.Workers*8, 256)
	}
	jc := jetstream.ConsumerConfig{
		Durable:     cfg.Durable,
		Description: "medic " + cfg.Durable,
		AckPolicy:   jetstream.AckExplicitPolicy,
		AckWait:     b.cfg.AckWait,
		// medic, not JetStream, decides when a message has had its
		// bus.max_deliver tries (handle): JetStream gives up on a message
		// for good at its own limit, so a dead-letter publish that failed
		// on the last try (a full disk) would have lost it.
		MaxDeliver:    -1,
		FilterSubject: cfg.FilterSubject,
		MaxAckPending: cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, cfg.Stream, jc)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", cfg.Durable, cfg.Stream, err)
	}
	c := &Consumer{bus: b, cfg: cfg, jc: jc, work: make(chan jetstream.Msg)}
	if err := b.releaseStalePending(ctx, c, cons); err != nil {
		// Not fatal: the stale deliveries come back after AckWait instead.
		b.logger.Warn("could not release deliveries left by the previous process; they resume after ack_wait",
			"consumer", cfg.Durable, "ack_wait", b.cfg.AckWait, "err", err)
	}
	c.stopping, c.stopFetching = context.WithCancel(context.Background())
	c.handlerCtx, c.cancelHandler = context.WithCancel(context.Background())

	for range cfg.Workers {
		c.wg.Go(func() {
			for {
				select {
				case m := <-c.work:
					if cfg.YieldToIntake > 0 {
						b.gate.wait(c.stopping, cfg.YieldToIntake)
					}
					c.handle(m, h)
				case <-c.stopping.Done():
					return
				}
			}
		})
	}
	if err := c.consume(cons); err != nil {
		c.shutdown()
		return nil, err
	}
	b.mu.Lock()
	b.consumers = append(b.consumers, c)
	b.mu.Unlock()
	b.heal.register(c.ensurer())
	return c, nil
}

// consume starts pulling from cons, replacing (and stopping) the previous
// pull of a consumer the server had lost.
func (c *Consumer) consume(cons jetstream.Consumer) error {
	b, durable := c.bus, c.cfg.Durable
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case c.work <- m:
		case <-c.stopping.Done():
			// Stopping: leave it unacked; JetStream redelivers it after AckWait.
		}
	},
		jetstream.PullMaxMessages(min(c.cfg.MaxAckPending, 512)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
				errors.Is(err, nats.ErrNoResponders) {
				// The pull has nothing to pull from: the consumer (or its
				// stream) is gone, or the server is still recovering it.
				// The healer checks and puts back what is missing.
				b.logger.Warn("the NATS server does not answer the consumer's pull; checking that it is still there", "consumer", durable, "err", err)
				b.kickHeal()
				return
			}
			if !errors.Is(err, jetstream.ErrNoHeartbeat) || b.nc.IsConnected() {
				b.logger.Debug("consumer error", "consumer", durable, "err", err)
			}
			if errors.Is(err, jetstream.ErrNoHeartbeat) && b.nc.IsConnected() {
				// Connected, yet the server stopped answering the pull: the
				// consumer may have gone without a word. The healer checks.
				b.kickHeal()
			}
		}),
	)
	if err != nil {
		return fmt.Errorf("start consuming %s: %w", durable, err)
	}
	c.ccMu.Lock()
	old := c.cc
	c.cc = cc
	if c.stopping.Err() != nil {
		// Stopped while the healer re-created it: this pull must not outlive
		// the consumer.
		old, c.cc = cc, nil
	}
	c.ccMu.Unlock()
	if old != nil {
		old.Stop()
	}
	return nil
}

// ensurer lets the healer re-create the consumer, and pull from it again,
// when the server lost it (wiped, or the stream re-created).
func (c *Consumer) ensurer() ensurer {
	b := c.bus
	return ensurer{
		key:  "consumer " + c.cfg.Durable + " on " + c.cfg.Stream,
		kind: "consumer",
		exists: func(ctx context.Context) (bool, error) {
			if c.stopping.Err() != nil {
				return true, nil // stopped: nothing to put back
			}
			_, err := b.js.Consumer(ctx, c.cfg.Stream, c.cfg.Durable)
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
				return false, nil
			}
			return err == nil, err
		},
		create: func(ctx context.Context) error {
			cons, err := b.js.CreateOrUpdateConsumer(ctx, c.cfg.Stream, c.jc)
			if err != nil {
				return fmt.Errorf("create consumer %s on %s: %w", c.cfg.Durable, c.cfg.Stream, err)
			}
			return c.consume(cons)
		},
	}
}

// releaseStalePending hands back at once what the previous medic process
// had been given and not acknowledged. After a kill -9 those messages stay
// pending for the dead process until AckWait (30 s) runs out, so delivery
// would stall that long after every crash. With the embedded server the
// data-dir lock guarantees that process is gone, so the consumer is reset to
// its ack floor: everything after it is delivered again now. Messages acked
// out of order above the floor come again too, which the engine (message IDs)
// and the sinks (delivery records) already make harmless. With an external
// NATS another replica may be working on them, so nothing is reset there.
//
// A reset also forgets how often each message was delivered, so this is
// where a crash loop is caught (crashloop.go): when bus.max_deliver
// processes in a row died with the ack floor at the same place, the oldest
// message above it is marked to be parked instead of handled.
func (b *Bus) releaseStalePending(ctx context.Context, c *Consumer, cons jetstream.Consumer) error {
	if !b.embedded() {
		return nil
	}
	cfg := c.cfg
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer info: %w", err)
	}
	restarts, err := b.countUncleanRestart(cfg.Durable, info.AckFloor.Stream, info.NumAckPending > 0)
	if err != nil {
		b.logger.Warn("could not count restarts in a crash loop", "consumer", cfg.Durable, "err", err)
	}
	if info.NumAckPending == 0 {
		return nil
	}
	if restarts >= b.cfg.MaxDeliver {
		seq, err := b.firstAbove(ctx, cfg, info.AckFloor.Stream)
		if err != nil {
			b.logger.Warn("could not find the message of a crash loop", "consumer", cfg.Durable, "restarts", restarts, "err", err)
		} else {
			c.crashSuspect.Store(seq)
			c.crashRestarts = restarts
			b.logger.Error("medic stopped without a clean shutdown in every one of its last starts while one message was in flight; it will be parked, not handled again",
				"consumer", cfg.Durable, "seq", seq, "restarts", restarts, "max_deliver", b.cfg.MaxDeliver)
		}
	}
	if _, err := b.js.ResetConsumer(ctx, cfg.Stream, cfg.Durable); err != nil {
		return fmt.Errorf("reset consumer %s: %w", cfg.Durable, err)
	}
	b.logger.Info("released deliveries left unacknowledged by the previous process",
		"consumer", cfg.Durable, "pending", info.NumAckPending, "ack_floor", info.AckFloor.Stream)
	return nil
}

func (c *Consumer) handle(m jetstream.Msg, h Handler) {
	meta, err := m.Metadata()
	if err != nil {
		c.bus.logger.Error("message without JetStream metadata", "consumer", c.cfg.Durable, "err", err)
		_ = m.Term()
		return
	}
	d := &Delivery{
		Subject:   m.Subject(),
		Data:      m.Data(),
		Header:    m.Headers(),
		Attempt:   int(meta.NumDelivered),
		StreamSeq: meta.Sequence.Stream,
	}
	// Handlers see JSON, whatever bus.compression the writer had.
	plainHeader, plainData, derr := plainPayload(d.Header, d.Data)
	if derr != nil {
		// Retrying cannot make it readable: park it as it is (header and
		// payload together), so a medic that can read it may replay it.
		c.park(m, d, derr.Error())
		return
	}
	d.Header, d.Data = plainHeader, plainData
	if s := c.crashSuspect.Load(); s != 0 && d.StreamSeq == s {
		c.park(m, d, fmt.Sprintf("medic stopped without a clean shutdown %d times in a row while this message was in flight (killed for memory? a fatal error?); parked without handling it again", c.crashRestarts))
		return
	}
	if d.Attempt > c.bus.cfg.MaxDeliver {
		// Every earlier delivery ended with neither an ack nor a nak (the
		// handler outlived ack_wait, medic stopped mid-work: a crash loop),
		// or the last one's dead-letter publish failed: park it now rather
		// than run the handler once more.
		c.park(m, d, fmt.Sprintf("not handled in %d deliveries (a handler timed out, medic stopped mid-work, or parking it failed)", d.Attempt-1))
		return
	}

	// Tell JetStream we are alive while a long action runs, so it does not
	// redeliver to another replica mid-work. A timer, not a goroutine with a
	// ticker: most handlers finish long before the first beat is due.
	interval := c.bus.cfg.AckWait / 3
	var (
		hbMu   sync.Mutex
		hbDone bool
		beat   *time.Timer
	)
	hbMu.Lock() // the callback must not see beat before it is set
	beat = time.AfterFunc(interval, func() {
		hbMu.Lock()
		defer hbMu.Unlock()
		if hbDone {
			return
		}
		_ = m.InProgress()
		beat.Reset(interval)
	})
	hbMu.Unlock()
	hbStop := func() {
		hbMu.Lock()
		hbDone = true
		hbMu.Unlock()
		beat.Stop()
	}
	err = c.safeHandle(h, d)
	for full := 0; errors.Is(err, ErrStreamFull); full++ {
		// The handler's output was refused by a full stream (the engine's
		// findings). That is not this message's fault, so it must not use up
		// its deliveries and end in the dead-letter stream: wait, with the
		// heartbeat still running, and try again until there is room.
		if full == 0 {
			c.bus.logger.Warn("handler output refused by a full stream; retrying in place until there is room",
				"consumer", c.cfg.Durable, "seq", d.StreamSeq, "err", err)
		}
		select {
		case <-time.After(streamFullRetry):
		case <-c.stopping.Done():
		}
		if c.stopping.Err() != nil {
			hbStop()
			return // unacked: redelivered after the restart
		}
		err = c.safeHandle(h, d)
	}
	hbStop()

	if c.handlerCtx.Err() != nil && err != nil {
		return // shutting down: let JetStream redeliver after restart
	}
	switch {
	case err == nil:
		if aerr := m.Ack(); aerr != nil {
			c.bus.logger.Warn("ack failed; the message will be redelivered", "consumer", c.cfg.Durable, "seq", d.StreamSeq, "err", aerr)
		}
	case IsPermanent(err) || d.Attempt >= c.bus.cfg.MaxDeliver:
		reason := err.Error()
		if !IsPermanent(err) {
			reason = fmt.Sprintf("failed %d deliveries, last error: %s", d.Attempt, reason)
		}
		c.park(m, d, reason)
	default:
		delay := c.backoff(d.Attempt)
		c.bus.logger.Warn("handling failed; will retry", "consumer", c.cfg.Durable, "seq", d.StreamSeq,
			"attempt", d.Attempt, "max_deliver", c.bus.cfg.MaxDeliver, "retry_in", delay, "err", err)
		_ = m.NakWithDelay(delay)
	}
}

func (c *Consumer) safeHandle(h Handler, d *Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.bus.logger.Error("handler panicked", "consumer", c.cfg.Durable, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return h(c.handlerCtx, d)
}

func (c *Consumer) backoff(attempt int) time.Duration {
	bo := c.bus.cfg.Backoff
	if len(bo) == 0 {
		return time.Second
	}
	return bo[min(attempt-1, len(bo)-1)]
}

// park moves a message to the dead-letter stream and terminates it in its
// own. When the dead-letter stream cannot store it (a full disk, NATS
// unavailable), the message stays unacknowledged in its stream and is
// delivered again after the longest back-off, to be parked then: parking may
// wait, the message is never dropped.
func (c *Consumer) park(m jetstream.Msg, d *Delivery, reason string) {
	if err := c.deadLetter(d, reason); err != nil {
		delay := c.backoff(len(c.bus.cfg.Backoff))
		c.bus.logger.Error("dead-letter publish failed; the message stays in its stream and is parked on a later delivery",
			"consumer", c.cfg.Durable, "seq", d.StreamSeq, "reason", reason, "retry_in", delay, "err", err)
		_ = m.NakWithDelay(delay)
		return
	}
	if terr := m.TermWithReason(truncate(reason, 256)); terr != nil {
		c.bus.logger.Warn("terminate message", "consumer", c.cfg.Durable, "seq", d.StreamSeq, "err", terr)
	}
}

// deadLetter publishes d to the dead-letter stream.
func (c *Consumer) deadLetter(d *Delivery, reason string) error {
	msg := nats.NewMsg(DeadLetterSubjectPrefix + token(c.cfg.Durable))
	msg.Data = d.Data
	for k, vs := range d.Header {
		if k == nats.MsgIdHdr {
			continue
		}
		for _, v := range vs {
			msg.Header.Add(k, v)
		}
	}
	msg.Header.Set(HeaderDeadReason, truncate(reason, 4096))
	msg.Header.Set(HeaderDeadConsumer, c.cfg.Durable)
	msg.Header.Set(HeaderDeadDeliveries, strconv.Itoa(d.Attempt))
	msg.Header.Set(HeaderOriginalSubject, d.Subject)
	msg.Header.Set(HeaderOriginalStream, c.cfg.Stream)
	msg.Header.Set(HeaderOriginalSeq, strconv.FormatUint(d.StreamSeq, 10))
	id := fmt.Sprintf("%s.%s.%d", c.cfg.Stream, c.cfg.Durable, d.StreamSeq)
	ctx, cancel := context.WithTimeout(context.Background(), c.bus.cfg.PublishTimeout)
	defer cancel()
	if _, err := c.bus.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("publish dead letter: %w", err)
	}
	c.bus.logger.Error("message dead-lettered", "consumer", c.cfg.Durable, "subject", d.Subject,
		"seq", d.StreamSeq, "deliveries", d.Attempt, "reason", reason)
	if c.cfg.OnDeadLetter != nil {
		c.cfg.OnDeadLetter(d, reason)
	}
	return nil
}

// Stop stops fetching, lets running handlers finish, and returns. Messages
// fetched but not started are redelivered by JetStream after AckWait.
func (c *Consumer) Stop() { c.stop.Do(c.shutdown) }

func (c *Consumer) shutdown() {
	c.bus.heal.unregister(c.ensurer().key)
	c.stopFetching() // before cc is read: a pull the healer starts later stops itself
	c.ccMu.Lock()
	cc := c.cc
	c.cc = nil
	c.ccMu.Unlock()
	if cc != nil {
		cc.Stop()
	}
	finished := make(chan struct{})
	go func() { c.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(shutdownGrace):
		c.bus.logger.Warn("handlers still running after grace period; cancelling them", "consumer", c.cfg.Durable)
		c.cancelHandler()
		<-finished
	}
	c.cancelHandler()
	// Whatever is left pending did not kill this process.
	c.bus.clearUncleanRestarts(c.cfg.Durable)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-len("…")] + "…"
}

func splitHostPort(hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	return host, port, nil
}
