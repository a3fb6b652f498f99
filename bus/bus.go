// Package bus is medic's durable backbone: NATS JetStream, embedded in the
// process by default or reached at an external URL. Triggers publish events
// here before they answer their caller; the engine and each sink consume
// through durable pull consumers that ack only after their work is done.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event"
)

// Stream and subject names. Subjects carry the event kind or sink name as
// their last token so consumers can filter without decoding.
const (
	EventsStream     = "MEDIC_EVENTS"
	FindingsStream   = "MEDIC_FINDINGS"
	DeadLetterStream = "MEDIC_DEADLETTER"

	EventsSubjectPrefix     = "medic.events."
	FindingsSubjectPrefix   = "medic.findings."
	DeadLetterSubjectPrefix = "medic.deadletter."
)

// ErrStreamFull is returned, wrapped, by Publish and PublishFindings when
// the stream is at bus.max_bytes with nothing processed left to reclaim: the
// messages were refused, not stored and not lost. It is
// event.ErrStreamFull, so the intake can tell it apart without
// importing bus.
var ErrStreamFull = event.ErrStreamFull

// Headers medic sets on dead-lettered messages.
const (
	HeaderDeadReason      = "Medic-Dead-Reason"
	HeaderDeadConsumer    = "Medic-Dead-Consumer"
	HeaderDeadDeliveries  = "Medic-Dead-Deliveries"
	HeaderOriginalSubject = "Medic-Original-Subject"
	HeaderOriginalStream  = "Medic-Original-Stream"
	HeaderOriginalSeq     = "Medic-Original-Seq"
)

// Config selects and tunes the bus: the bus section of medic.yaml, which
// package config owns (defaults and validation in one place).
type Config = config.BusConfig

// Bus is a connection to JetStream with medic's streams in place.
type Bus struct {
	cfg    Config
	logger *slog.Logger
	nsMu   sync.Mutex
	ns     *server.Server // nil with an external server; replaced when the healer restarts it
	nc     *nats.Conn
	js     jetstream.JetStream

	mu        sync.Mutex
	consumers []*Consumer
	gate      *intakeGate
	heal      *healer // heal.go: readiness and re-creating what the server lost
	pub       *batchPublisher

	reclaimMu   sync.Mutex
	lastReclaim map[string]reclaimResult // by stream
}

// Open starts the embedded server (or connects to cfg.URL) and creates or
// updates medic's streams.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bus{cfg: cfg, logger: logger, gate: newIntakeGate(), heal: newHealer()}
	url := cfg.URL
	opts := []nats.Option{
		nats.Name("medic"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectBufSize(-1), // fail publishes fast while disconnected: the webhook answers 503
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err == nil {
				return // our own Close
			}
			logger.Warn("disconnected from NATS", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
			// The server may have come back without its store (wiped,
			// a new volume): check, and put back what is gone.
			b.reconnected()
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			logger.Warn("NATS asynchronous error", "subject", subj, "err", err)
		}),
	}
	if url == "" {
		ns, err := startEmbedded(cfg)
		if err != nil {
			return nil, err
		}
		b.ns = ns
		url = ns.ClientURL()
		opts = append(opts, nats.InProcessServer(embeddedConn{b}))
	} else if cfg.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredentialsFile))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("connect to NATS at %s: %w", redact(url), err)
	}
	b.nc = nc
	// Streams, consumers and KV go through the jetstream API; publishes go
	// through the batch publisher (publish.go).
	js, err := jetstream.New(nc)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("open JetStream: %w", err)
	}
	b.js = js
	if b.pub, err = newBatchPublisher(nc); err != nil {
		b.Close()
		return nil, err
	}
	if err := b.ensureStreams(ctx); err != nil {
		b.Close()
		return nil, err
	}
	b.startHealer()
	return b, nil
}

func startEmbedded(cfg Config) (*server.Server, error) {
	if err := os.MkdirAll(cfg.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("create JetStream store dir %s: %w", cfg.StoreDir, err)
	}
	opts := &server.Options{
		ServerName:         "medic-embedded",
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		DontListen:         cfg.Listen == "",
		NoSigs:             true,
		NoLog:              true,
		JetStreamMaxMemory: 64 << 20,
		MaxPayload:         8 << 20,
	}
	if cfg.Listen != "" {
		host, port, err := splitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("bus.listen: %w", err)
		}
		opts.Host, opts.Port = host, port
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configure embedded NATS: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded NATS with store %s did not become ready in 30s", cfg.StoreDir)
	}
	return ns, nil
}

func (b *Bus) ensureStreams(ctx context.Context) error {
	streams := []jetstream.StreamConfig{
		{
			Name:        EventsStream,
			Description: "medic events from triggers, deduplicated by event ID",
			Subjects:    []string{EventsSubjectPrefix + ">"},
			Duplicates:  b.cfg.DedupWindow,
		},
		{
			Name:        FindingsStream,
			Description: "medic findings, one subject per sink",
			Subjects:    []string{FindingsSubjectPrefix + ">"},
			Duplicates:  b.cfg.FindingsWindow(),
		},
		{
			Name:        DeadLetterStream,
			Description: "messages that failed every delivery, with the reason in headers",
			Subjects:    []string{DeadLetterSubjectPrefix + ">"},
			Duplicates:  b.cfg.DedupWindow,
		},
		{
			Name:        HealthStream,
			Description: "the probe medic writes to learn when JetStream stores again (heal.go)",
			Subjects:    []string{healthSubject},
			Duplicates:  time.Second,
		},
	}
	for _, sc := range streams {
		sc.Storage = jetstream.FileStorage
		sc.Retention = jetstream.LimitsPolicy
		// Work streams refuse rather than discard: with DiscardOld a burst
		// larger than the stream deleted events nobody had processed yet,
		// after the webhook had answered 200 for them. Refused messages are
		// answered 503 and retried by their sender (intake) or retried in
		// place (the engine's findings). What every consumer acknowledged is
		// purged to make room first (reclaim). CreateOrUpdateStream moves
		// streams made by an older medic with DiscardOld over.
		sc.Discard = jetstream.DiscardNew
		if sc.Name == DeadLetterStream {
			// Dead letters are a record for operators, not work: nobody
			// consumes them, so nothing could ever make room in a full
			// dead-letter stream, and the newest failures are the ones worth
			// reading. Oldest go first.
			sc.Discard = jetstream.DiscardOld
		}
		sc.Replicas = b.cfg.Replicas
		sc.MaxAge = b.cfg.Retention
		sc.MaxBytes = b.cfg.MaxBytes
		if sc.Name == DeadLetterStream {
			// Dead letters are what an operator reads after an outage: keep them longer.
			sc.MaxAge = max(b.cfg.Retention, 7*24*time.Hour)
		}
		if sc.Name == HealthStream {
			// One probe at a time is all it holds: the newest replaces it.
			sc.Discard, sc.MaxMsgs, sc.MaxBytes, sc.MaxAge = jetstream.DiscardOld, 1, -1, time.Hour
		}
		if err := retryUnanswered(ctx, func(ctx context.Context) error { _, err := b.js.CreateOrUpdateStream(ctx, sc); return err }); err != nil {
			return fmt.Errorf("create or update stream %s: %w", sc.Name, err)
		}
		b.ensureStream(sc)
	}
	return nil
}

// JetStream exposes the JetStream context for packages that need KV buckets
// or streams of their own. What they create through it is re-created when
// the server loses it (heal.go).
func (b *Bus) JetStream() jetstream.JetStream { return healingJS{JetStream: b.js, b: b} }

// Conn exposes the NATS connection (request/reply, core subjects).
func (b *Bus) Conn() *nats.Conn { return b.nc }

// Healthy returns nil while the bus can take events: the connection to
// NATS is up, JetStream stores (the last publish to each stream, or the
// healer's probe since, succeeded) and everything medic created on
// JetStream is there. Otherwise the error says why; /readyz shows it.
func (b *Bus) Healthy() error {
	if err := b.connected(); err != nil {
		return err
	}
	return b.storeHealth()
}

// connected returns nil while the connection to NATS is up.
func (b *Bus) connected() error {
	if b.nc == nil {
		return errors.New("bus not open")
	}
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("NATS connection is %s", st)
	}
	return nil
}

// EventSubject is the subject an event of kind is published on.
func EventSubject(kind event.Kind) string { return EventsSubjectPrefix + token(string(kind)) }

// FindingSubject is the subject findings for sink are published on.
func FindingSubject(sink string) string { return FindingsSubjectPrefix + token(sink) }

// token makes s safe as one subject token.
func token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}

// Publish stores events on the events stream with their IDs as Nats-Msg-Id,
// and returns only when JetStream acknowledged every one of them. It
// implements event.Publisher. While it runs, consumers that yield to
// intake wait (ConsumerConfig.YieldToIntake).
func (b *Bus) Publish(ctx context.Context, events []event.Event) (event.PublishResult, error) {
	b.gate.enter()
	defer b.gate.leave()
	enc := batchEncoders.Get().(*event.BatchEncoder)
	enc.Reset()
	enc.Grow(len(events) * eventSizeHint)
	msgs := make([]*nats.Msg, len(events))
	backing := make([]nats.Msg, len(events))
	ids := make([]string, len(events))
	var arena payloadArena
	for i := range events {
		data, err := enc.Encode(&events[i])
		if err != nil {
			return event.PublishResult{}, fmt.Errorf("encode event %s: %w", events[i].ID, err)
		}
		// The publisher adds the message ID to this header either way.
		h := make(nats.Header, 2)
		data = b.encodePayload(h, data, &arena)
		backing[i] = nats.Msg{Subject: EventSubject(events[i].Kind), Data: data, Header: h}
		msgs[i] = &backing[i]
		ids[i] = events[i].ID
	}
	stored, dups, err := b.publishAll(ctx, EventsStream, msgs, ids)
	if err == nil {
		releaseEncoding(enc, &arena)
	}
	return event.PublishResult{Stored: stored, Duplicates: dups}, err
}

// releaseEncoding gives a publish's encoder and compressed payloads back
// for the next publish, once publishAll stored every message: nothing
// reads them any more (see payloadArena). After a failure they are left to
// the garbage collector.
func releaseEncoding(enc *event.BatchEncoder, arena *payloadArena) {
	arena.release()
	if enc.Cap() <= maxPooledEncoder {
		batchEncoders.Put(enc)
	}
}

// batchEncoders encode the events of one Publish each, reused across
// webhooks (event.BatchEncoder).
var batchEncoders = sync.Pool{New: func() any { return event.NewBatchEncoder() }}

const (
	// eventSizeHint is about an alert's event (1.2–1.5 KiB), to size a
	// fresh encoder for its batch.
	eventSizeHint = 1536
	// maxPooledEncoder keeps an encoder that grew on an unusually large
	// batch from being held by the pool.
	maxPooledEncoder = 4 << 20
)

// Headers on finding messages, so a consumer can route and account for a
// finding without decoding it.
const (
	HeaderFindingID  = "Medic-Finding-Id"
	HeaderReceivedAt = "Medic-Received-At" // the event's ReceivedAt, RFC 3339 with nanoseconds
)

// PublishFinding stores f for sink.
func (b *Bus) PublishFinding(ctx context.Context, sink string, f *event.Finding) error {
	return b.PublishFindings(ctx, []string{sink}, f)
}

// PublishFindings stores f once per sink, encoding it once. The message ID
// is the finding ID and the sink, so an engine that crashed after publishing
// and runs the event again publishes nothing new.
func (b *Bus) PublishFindings(ctx context.Context, sinks []string, f *event.Finding) error {
	if len(sinks) == 0 {
		return nil
	}
	// Encoded and compressed once for every sink, into buffers the next
	// finding reuses: they were a seventh of what a storm allocated.
	enc := batchEncoders.Get().(*event.BatchEncoder)
	enc.Reset()
	data, err := enc.EncodeFinding(f)
	if err != nil {
		return fmt.Errorf("encode finding %s: %w", f.ID, err)
	}
	var arena payloadArena
	encoding := nats.Header{}
	data = b.encodePayload(encoding, data, &arena)
	msgs := make([]*nats.Msg, len(sinks))
	ids := make([]string, len(sinks))
	for i, sink := range sinks {
		h := nats.Header{HeaderFindingID: []string{f.ID}}
		if !f.Event.ReceivedAt.IsZero() {
			h[HeaderReceivedAt] = []string{f.Event.ReceivedAt.UTC().Format(time.RFC3339Nano)}
		}
		maps.Copy(h, encoding)
		msgs[i] = &nats.Msg{Subject: FindingSubject(sink), Data: data, Header: h}
		ids[i] = f.ID + "." + sink
	}
	if _, _, err = b.publishAll(ctx, FindingsStream, msgs, ids); err == nil {
		releaseEncoding(enc, &arena)
	}
	return err
}

// publishAll publishes asynchronously, then waits for every ack, so a batch
// costs one round trip rather than one per message (publish.go). When
// stream refused messages for want of room, it reclaims what every consumer
// has processed and, if that freed anything, publishes the batch once more:
// the message IDs make the messages stored the first time duplicates.
func (b *Bus) publishAll(ctx context.Context, stream string, msgs []*nats.Msg, ids []string) (stored, dups int, err error) {
	// Tried even while JetStream is known not to store: the publish that
	// works again is what makes the bus ready again soonest.
	if err := b.connected(); err != nil {
		return 0, 0, fmt.Errorf("publish to JetStream: %w", err)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	defer func() {
		switch {
		case err == nil:
			b.storeOK(stream)
		case errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil && b.nc.IsConnected():
			// Connected, yet JetStream did not answer within
			// publish_timeout: it is not storing (an embedded server on a
			// full disk answers nothing).
			b.storeFailed(stream, &storeError{reason: reasonNoAnswer, err: err})
		default:
			b.storeFailed(stream, err)
		}
	}()
	stored, dups, err = b.pub.publish(ctx, msgs, ids)
	if !errors.Is(err, ErrStreamFull) {
		return stored, dups, err
	}
	freed, rerr := b.reclaim(ctx, stream)
	if rerr != nil {
		b.logger.Warn("could not reclaim processed messages from a full stream", "stream", stream, "err", rerr)
	}
	if freed == 0 {
		return stored, dups, err
	}
	stored2, dups2, err := b.pub.publish(ctx, msgs, ids)
	// The second publish counts the first one's stored messages as
	// duplicates; each message is counted once.
	return stored + stored2, max(dups2-stored, 0), err
}

// Close stops the consumers, drains the connection and shuts the embedded
// server down, in that order, so in-flight work is acked or redelivered.
func (b *Bus) Close() {
	b.stopHealer()
	b.mu.Lock()
	consumers := b.consumers
	b.consumers = nil
	b.mu.Unlock()
	for _, c := range consumers {
		c.Stop()
	}
	if b.nc != nil {
		if err := b.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.logger.Warn("drain NATS connection", "err", err)
		}
		// Drain is asynchronous; wait for it so the embedded server does not
		// go away under it.
		deadline := time.Now().Add(5 * time.Second)
		for !b.nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		b.nc.Close()
	}
	b.shutdownServer()
}

func (b *Bus) shutdownServer() {
	b.nsMu.Lock()
	ns := b.ns
	b.ns = nil
	b.nsMu.Unlock()
	if ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// embedded reports whether the bus runs its own server.
func (b *Bus) embedded() bool { return b.cfg.URL == "" }

// server returns the embedded server running now, nil without one.
func (b *Bus) server() *server.Server {
	b.nsMu.Lock()
	defer b.nsMu.Unlock()
	return b.ns
}

// embeddedConn gives the client a connection to whichever embedded server
// runs now, so that it reconnects to one the healer restarted.
type embeddedConn struct{ b *Bus }

func (e embeddedConn) InProcessConn() (net.Conn, error) {
	ns := e.b.server()
	if ns == nil {
		return nil, errors.New("the embedded NATS server is not running")
	}
	return ns.InProcessConn()
}

// restartEmbedded stops the embedded server and starts it again on the same
// store, which it recovers; the client reconnects by itself.
func (b *Bus) restartEmbedded() error {
	b.shutdownServer()
	ns, err := startEmbedded(b.cfg)
	if err != nil {
		return err
	}
	b.nsMu.Lock()
	b.ns = ns
	b.nsMu.Unlock()
	return nil
}

func redact(url string) string {
	if i := strings.Index(url, "@"); i >= 0 {
		if j := strings.Index(url, "://"); j >= 0 && j < i {
			return url[:j+3] + "***" + url[i:]
		}
	}
	return url
}
