package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	gojson "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// batchPublisher publishes a batch of messages to JetStream and waits for
// all of their acks with one wake-up per batch.
//
// It does by hand what jetstream.PublishMsgAsync does per message, because
// that API is built for one future per message: a random reply token, a
// future, a map entry under the client-wide lock, a timer and two channels
// for every message, and a goroutine waking for every ack. For a webhook of
// 50 alerts that bookkeeping cost as much CPU as decoding the webhook. Here
// a batch registers once; each message's reply subject carries the batch
// and the message's index (<inbox>.<batch>.<index>), so one wildcard
// subscription finds the batch by a map lookup under a lock taken once per
// batch, counts the ack with atomics, and wakes the publisher when the last
// one is in. The wire protocol is JetStream's own: a publish with a reply
// subject and a Nats-Msg-Id header, answered by a PubAck.
type batchPublisher struct {
	nc     *nats.Conn
	prefix string // "<inbox>."
	sub    *nats.Subscription
	next   atomic.Uint64

	mu      sync.Mutex
	batches map[string]*pubBatch
}

// pubBatch is one batch awaiting its acks.
type pubBatch struct {
	ids       []string
	remaining atomic.Int32
	stored    atomic.Int32
	dups      atomic.Int32
	done      chan struct{}

	mu   sync.Mutex
	errs []storeFailure
}

// storeFailure is one message JetStream did not store.
type storeFailure struct {
	id  string
	err error
}

// groupStoreErrors says once per distinct cause which messages failed,
// naming the first few: "store 7abc…, 1f3e…, 9d20… and 47 more: stream is
// full: …". A storm refused by a full stream fails whole batches for one
// reason, and one line per message made each 503's log entry 5 KB of the
// same sentence. The first failure of each cause is wrapped, so errors.Is
// and errors.As see what they saw before.
func groupStoreErrors(failures []storeFailure) error {
	if len(failures) == 0 {
		return nil
	}
	type group struct {
		first storeFailure
		ids   []string // the first namedPerCause
		n     int
	}
	var groups []*group
	byCause := map[string]*group{}
	for _, f := range failures {
		cause := f.err.Error()
		g := byCause[cause]
		if g == nil {
			g = &group{first: f}
			byCause[cause] = g
			groups = append(groups, g)
		}
		if g.n < namedPerCause {
			g.ids = append(g.ids, f.id)
		}
		g.n++
	}
	errs := make([]error, len(groups))
	for i, g := range groups {
		names := strings.Join(g.ids, ", ")
		if more := g.n - len(g.ids); more > 0 {
			names += fmt.Sprintf(" and %d more", more)
		}
		errs[i] = fmt.Errorf("store %s: %w", names, g.first.err)
	}
	return errors.Join(errs...)
}

// namedPerCause is how many message IDs a grouped store error names.
const namedPerCause = 3

func newBatchPublisher(nc *nats.Conn) (*batchPublisher, error) {
	p := &batchPublisher{nc: nc, prefix: nats.NewInbox() + ".", batches: map[string]*pubBatch{}}
	sub, err := nc.Subscribe(p.prefix+"*.*", p.onAck)
	if err != nil {
		return nil, fmt.Errorf("subscribe to publish acks: %w", err)
	}
	// Acks must never be dropped as a slow consumer's: a dropped ack is a
	// webhook answered 503 and sent again.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("set publish-ack limits: %w", err)
	}
	p.sub = sub
	return p, nil
}

// publish sends msgs with ids as their Nats-Msg-Id and waits until
// JetStream acked all of them or ctx ends. Each message's header gets the
// ID; msgs must not be shared with another publish.
func (p *batchPublisher) publish(ctx context.Context, msgs []*nats.Msg, ids []string) (stored, dups int, err error) {
	if len(msgs) == 0 {
		return 0, 0, nil
	}
	key := strconv.FormatUint(p.next.Add(1), 36)
	b := &pubBatch{ids: ids, done: make(chan struct{})}
	b.remaining.Store(int32(len(msgs)))
	p.mu.Lock()
	p.batches[key] = b
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.batches, key)
		p.mu.Unlock()
	}()

	replyPrefix := p.prefix + key + "."
	for i, m := range msgs {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header[jetstream.MsgIDHeader] = []string{ids[i]}
		m.Reply = replyPrefix + strconv.Itoa(i)
		if err := p.nc.PublishMsg(m); err != nil {
			// What was sent may still be stored; the sender's retry is
			// deduplicated by the message IDs.
			return int(b.stored.Load()), int(b.dups.Load()), fmt.Errorf("publish %s to %s: %w", ids[i], m.Subject, err)
		}
	}
	select {
	case <-b.done:
	case <-ctx.Done():
		// The last answer may have come as the deadline passed (a loaded
		// machine): every message answered is not a timeout, and refusing
		// the request would only make the sender retry what is stored.
		if left := b.remaining.Load(); left > 0 {
			stored, dups = int(b.stored.Load()), int(b.dups.Load())
			return stored, dups, fmt.Errorf("wait for JetStream to store %d messages: %w", left, ctx.Err())
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return int(b.stored.Load()), int(b.dups.Load()), groupStoreErrors(b.errs)
}

// pubAck is JetStream's answer to a publish.
type pubAck struct {
	Stream    string `json:"stream"`
	Duplicate bool   `json:"duplicate"`
	Error     *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// onAck counts one ack against its batch.
func (p *batchPublisher) onAck(m *nats.Msg) {
	rest, ok := strings.CutPrefix(m.Subject, p.prefix)
	if !ok {
		return
	}
	key, index, ok := strings.Cut(rest, ".")
	if !ok {
		return
	}
	i, err := strconv.Atoi(index)
	if err != nil {
		return
	}
	p.mu.Lock()
	b := p.batches[key]
	p.mu.Unlock()
	if b == nil || i < 0 || i >= len(b.ids) {
		return // a batch that timed out, or not ours
	}
	switch dup, err := parseAck(m); {
	case err != nil:
		b.mu.Lock()
		b.errs = append(b.errs, storeFailure{id: b.ids[i], err: err})
		b.mu.Unlock()
	case dup:
		b.dups.Add(1)
	default:
		b.stored.Add(1)
	}
	if b.remaining.Add(-1) == 0 {
		close(b.done)
	}
}

// parseAck reads a PubAck, or the status JetStream's absence produces:
// stored (duplicate says the ID was seen within the dedup window) or an
// error.
func parseAck(m *nats.Msg) (duplicate bool, err error) {
	if len(m.Data) == 0 {
		if m.Header.Get("Status") == "503" {
			return false, jetstream.ErrNoStreamResponse
		}
		return false, jetstream.ErrInvalidJSAck
	}
	var pa pubAck
	if err := gojson.Unmarshal(m.Data, &pa); err != nil {
		return false, fmt.Errorf("%w: %v", jetstream.ErrInvalidJSAck, err)
	}
	if pa.Error != nil {
		err := fmt.Errorf("jetstream error %d (%d): %s", pa.Error.Code, pa.Error.ErrCode, pa.Error.Description)
		full := isFullError(pa.Error.ErrCode, pa.Error.Description)
		if full {
			err = fmt.Errorf("%w: %w", ErrStreamFull, err)
		}
		switch {
		case pa.Error.ErrCode == errCodeInsufficientResources:
			err = &storeError{reason: reasonNoResources, err: err}
		case full:
			err = &storeError{reason: reasonFull, err: err}
		case pa.Error.ErrCode == errCodeStoreFailed:
			err = &storeError{reason: reasonStoreFailed, err: err}
		}
		return false, err
	}
	if pa.Stream == "" {
		return false, jetstream.ErrInvalidJSAck
	}
	return pa.Duplicate, nil
}

// JetStream's error codes for a store that refused a message.
const (
	errCodeStoreFailed           = 10077 // JSStreamStoreFailedF: the store's own error as the description
	errCodeInsufficientResources = 10023 // JSInsufficientResourcesErr: the server's JetStream storage is exhausted
)

// isFullError reports whether a PubAck error says the stream (with
// DiscardNew) or the server's storage has no room: the message was refused,
// not lost, and the publish can be tried again once space is freed.
func isFullError(code int, description string) bool {
	if code == errCodeInsufficientResources {
		return true
	}
	if code != errCodeStoreFailed {
		return false
	}
	// The descriptions are nats-server's ErrMaxBytes, ErrMaxMsgs and
	// ErrMaxMsgsPerSubject, which have no codes of their own, and the
	// disk's ENOSPC: refused for want of room, like the others.
	for _, s := range []string{"maximum bytes exceeded", "maximum messages exceeded", "maximum messages per subject exceeded", "no space left on device"} {
		if strings.Contains(description, s) {
			return true
		}
	}
	return false
}
