package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderReplayOf is set on a message republished from the dead-letter
// stream: the dead letter's sequence, so its logs and a second dead letter
// can be traced back to the first.
const HeaderReplayOf = "Medic-Replay-Of"

// ErrDeadLetterNotFound is returned, wrapped, for a sequence that is not (or
// no longer) in the dead-letter stream.
var ErrDeadLetterNotFound = errors.New("no such dead letter")

// ErrNoReader is returned, wrapped, by a replay to a subject no consumer
// reads any more (a sink removed from the configuration): the copy would
// sit in its stream unread while the dead letter, the only trace of it,
// was deleted.
var ErrNoReader = errors.New("no consumer reads the original subject")

// DeadLetter is one message in MEDIC_DEADLETTER, with what consumer.go
// recorded about it in headers.
type DeadLetter struct {
	// Seq is the dead letter's sequence in MEDIC_DEADLETTER: the handle
	// Get, Replay and Delete take.
	Seq uint64 `json:"seq"`
	// Time is when the message was dead-lettered.
	Time time.Time `json:"time"`
	// Consumer is the durable consumer that gave up on it: engine,
	// sink-<name>, interact-….
	Consumer string `json:"consumer"`
	// Subject, Stream and StreamSeq say where the message came from; a
	// replay publishes it to Subject again.
	Subject   string `json:"subject"`
	Stream    string `json:"stream"`
	StreamSeq uint64 `json:"stream_seq"`
	// Sink is the sink a finding was for (empty for other messages).
	Sink string `json:"sink,omitempty"`
	// FindingID is set for findings, EventID for events.
	FindingID string `json:"finding_id,omitempty"`
	EventID   string `json:"event_id,omitempty"`
	// Deliveries is how many times it was tried.
	Deliveries int    `json:"deliveries"`
	Reason     string `json:"reason"`
	// ReplayOf is set when this message had already been replayed from
	// another dead letter (its sequence) and failed again.
	ReplayOf uint64 `json:"replay_of,omitempty"`
	// Header and Data are the message as stored; only Get fills them.
	Header nats.Header `json:"header,omitempty"`
	Data   []byte      `json:"data,omitempty"`
}

// DeadLetterFilter selects dead letters. The zero value selects all of them.
type DeadLetterFilter struct {
	// Consumer is the durable consumer that dead-lettered them.
	Consumer string
	// Sink selects findings for that sink (their subject is
	// FindingSubject(Sink)); it excludes Subject.
	Sink string
	// Subject matches the original subject, with NATS wildcards (* and >).
	Subject string
	// Since keeps those dead-lettered at or after it.
	Since time.Time
}

// Empty reports whether f selects every dead letter.
func (f DeadLetterFilter) Empty() bool { return f == DeadLetterFilter{} }

// Validate names the first field that cannot be used.
func (f DeadLetterFilter) Validate() error {
	switch {
	case f.Sink != "" && f.Subject != "":
		return errors.New("sink and subject: give one of them (a sink is the subject " + FindingSubject("<sink>") + ")")
	case strings.ContainsAny(f.Consumer, ".*> \t\r\n"):
		return fmt.Errorf("consumer %q: a consumer name has no dots, wildcards or spaces", f.Consumer)
	case f.Subject != "" && !validSubjectPattern(f.Subject):
		return fmt.Errorf("subject %q: not a NATS subject (tokens separated by dots; * for one token, > for the rest)", f.Subject)
	}
	return nil
}

func validSubjectPattern(s string) bool {
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "", strings.ContainsAny(t, " \t\r\n"):
			return false
		case t == ">" && i != len(tokens)-1:
			return false
		case len(t) > 1 && strings.ContainsAny(t, "*>"):
			return false
		}
	}
	return true
}

// matches reports whether d passes the filter's parts that the stream's
// own subject filter cannot apply (Consumer and Since are applied by the
// consumer that reads the stream).
func (f DeadLetterFilter) matches(d *DeadLetter) bool {
	subject := f.Subject
	if f.Sink != "" {
		subject = FindingSubject(f.Sink)
	}
	return subject == "" || subjectsOverlap(subject, d.Subject)
}

// DeadLetters reads and acts on the dead-letter stream: what an operator
// does after an outage. Nothing consumes that stream, so a dead letter stays
// until it is replayed or deleted here, or ages out (seven days at least).
type DeadLetters struct {
	bus    *Bus
	stream jetstream.Stream
}

// DeadLetters opens the dead-letter stream, which Open created.
func (b *Bus) DeadLetters(ctx context.Context) (*DeadLetters, error) {
	s, err := b.js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", DeadLetterStream, err)
	}
	return &DeadLetters{bus: b, stream: s}, nil
}

// Held counts the dead letters in the stream now, by the consumer that
// dead-lettered them (the last token of their subject).
func (dl *DeadLetters) Held(ctx context.Context) (map[string]uint64, error) {
	info, err := dl.stream.Info(ctx, jetstream.WithSubjectFilter(DeadLetterSubjectPrefix+">"))
	if err != nil {
		return nil, fmt.Errorf("stream info %s: %w", DeadLetterStream, err)
	}
	held := make(map[string]uint64, len(info.State.Subjects))
	for subject, n := range info.State.Subjects {
		held[strings.TrimPrefix(subject, DeadLetterSubjectPrefix)] += n
	}
	return held, nil
}

// List returns the newest dead letters that match f, newest first, at most
// limit of them (0: all). Header and Data are left out; Get has them.
func (dl *DeadLetters) List(ctx context.Context, f DeadLetterFilter, limit int) ([]DeadLetter, error) {
	if limit < 0 {
		return nil, fmt.Errorf("limit %d: must not be negative", limit)
	}
	var ring []DeadLetter // the last limit matches, oldest at next once full
	next := 0
	err := dl.scan(ctx, f, func(d DeadLetter) {
		d.Header, d.Data = nil, nil
		if limit == 0 || len(ring) < limit {
			ring = append(ring, d)
			return
		}
		ring[next] = d
		next = (next + 1) % limit
	})
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, 0, len(ring))
	for i := range ring {
		out = append(out, ring[(next+len(ring)-1-i)%len(ring)])
	}
	return out, nil
}

// Get returns the dead letter at seq, with its headers and payload.
func (dl *DeadLetters) Get(ctx context.Context, seq uint64) (DeadLetter, error) {
	m, err := dl.stream.GetMsg(ctx, seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, ErrDeadLetterNotFound)
	case err != nil:
		return DeadLetter{}, fmt.Errorf("read dead letter %d: %w", seq, err)
	}
	return decodeDeadLetter(m.Sequence, m.Time, m.Subject, m.Header, m.Data), nil
}

// ReplayResult counts what a replay did.
type ReplayResult struct {
	// Replayed dead letters were stored on their original subject again
	// and removed from the dead-letter stream.
	Replayed int `json:"replayed"`
	// Seqs are their dead-letter sequences, in the order replayed.
	Seqs []uint64 `json:"seqs"`
	// Unread are dead letters a filter selected and that were left in
	// place because no consumer reads their subject any more (ErrNoReader).
	Unread []uint64 `json:"unread,omitempty"`
}

// Replay publishes the dead letter at seq to its original subject, as it
// was first published, and deletes it once JetStream stored the copy.
//
// The copy's Nats-Msg-Id is not the original's: that one is still inside
// the dedup window after a short outage, and JetStream would drop the copy
// as a duplicate. It is derived from the dead letter instead, so a replay
// cut short between the publish and the delete (or sent twice at once)
// stores one copy. A finding replayed after all was delivered is not sent
// twice: the sink's delivery record (Deliveries) is checked first, and the
// receiver gets the same Idempotency-Key as before.
func (dl *DeadLetters) Replay(ctx context.Context, seq uint64) error {
	d, err := dl.Get(ctx, seq)
	if err != nil {
		return err
	}
	if d.Subject == "" {
		return fmt.Errorf("replay dead letter %d: it has no %s header, so where it came from is unknown", seq, HeaderOriginalSubject)
	}
	if d.Stream != "" {
		switch read, err := dl.read(ctx, d.Stream, d.Subject); {
		case err != nil:
			return fmt.Errorf("replay dead letter %d: %w", seq, err)
		case !read:
			return fmt.Errorf("replay dead letter %d to %s on %s (was its sink removed? purge it instead): %w", seq, d.Subject, d.Stream, ErrNoReader)
		}
	}
	msg := &nats.Msg{Subject: d.Subject, Data: d.Data, Header: nats.Header{}}
	for k, vs := range d.Header {
		switch k {
		case HeaderDeadReason, HeaderDeadConsumer, HeaderDeadDeliveries,
			HeaderOriginalSubject, HeaderOriginalStream, HeaderOriginalSeq, HeaderReplayOf, nats.MsgIdHdr:
			continue
		}
		msg.Header[k] = vs
	}
	msg.Header.Set(HeaderReplayOf, strconv.FormatUint(seq, 10))
	id := fmt.Sprintf("medic-replay.%s.%d", DeadLetterStream, seq)
	if _, _, err := dl.bus.publishAll(ctx, d.Stream, []*nats.Msg{msg}, []string{id}); err != nil {
		return fmt.Errorf("replay dead letter %d to %s: %w", seq, d.Subject, err)
	}
	if err := dl.Delete(ctx, seq); err != nil && !errors.Is(err, ErrDeadLetterNotFound) {
		// Stored but still listed: replaying it again stores nothing new
		// (same message ID within the dedup window).
		return fmt.Errorf("dead letter %d was replayed but not deleted: %w", seq, err)
	}
	dl.bus.logger.Info("dead letter replayed", "seq", seq, "subject", d.Subject, "stream", d.Stream,
		"consumer", d.Consumer, "finding", d.FindingID, "event", d.EventID)
	return nil
}

// read reports whether a durable consumer of stream reads subject.
func (dl *DeadLetters) read(ctx context.Context, stream, subject string) (bool, error) {
	s, err := dl.bus.js.Stream(ctx, stream)
	if err != nil {
		return false, fmt.Errorf("look up stream %s: %w", stream, err)
	}
	lister := s.ListConsumers(ctx)
	read := false
	for ci := range lister.Info() { // drained to the end: the lister's goroutine sends them all
		if ci.Config.Durable == "" {
			continue // ephemeral readers (a dead-letter scan, the nats CLI) come and go
		}
		filters := ci.Config.FilterSubjects
		if ci.Config.FilterSubject != "" {
			filters = append(filters, ci.Config.FilterSubject)
		}
		if len(filters) == 0 {
			read = true // the whole stream
		}
		for _, f := range filters {
			if subjectsOverlap(f, subject) {
				read = true
			}
		}
	}
	if err := lister.Err(); err != nil {
		return false, fmt.Errorf("list consumers of %s: %w", stream, err)
	}
	return read, nil
}

// ReplayMatching replays every dead letter that f selects, in stream order
// (oldest first, as they first happened). Those nobody would read are left
// and listed (Unread). It stops at the first failure; what was replayed
// before it is in the result, the rest stays.
func (dl *DeadLetters) ReplayMatching(ctx context.Context, f DeadLetterFilter) (ReplayResult, error) {
	seqs, err := dl.seqs(ctx, f)
	res := ReplayResult{Seqs: []uint64{}}
	if err != nil {
		return res, err
	}
	for _, seq := range seqs {
		if err := dl.Replay(ctx, seq); err != nil {
			if errors.Is(err, ErrDeadLetterNotFound) {
				continue // replayed or deleted by someone else meanwhile
			}
			if errors.Is(err, ErrNoReader) {
				res.Unread = append(res.Unread, seq) // one removed sink does not hold up the others
				continue
			}
			return res, err
		}
		res.Replayed++
		res.Seqs = append(res.Seqs, seq)
	}
	return res, nil
}

// Delete removes the dead letter at seq.
func (dl *DeadLetters) Delete(ctx context.Context, seq uint64) error {
	err := dl.stream.DeleteMsg(ctx, seq)
	if err == nil {
		return nil
	}
	// nats.go keeps only the text of the server's reason for a refused
	// delete; whether the message is there says whether that was the reason.
	if errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
		if _, gerr := dl.stream.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("dead letter %d: %w", seq, ErrDeadLetterNotFound)
		}
	}
	return fmt.Errorf("delete dead letter %d: %w", seq, err)
}

// Purge deletes every dead letter f selects and returns how many. The zero
// filter empties the stream; callers that take a filter from a person must
// ask for that explicitly.
func (dl *DeadLetters) Purge(ctx context.Context, f DeadLetterFilter) (uint64, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	if f.Sink == "" && f.Subject == "" && f.Since.IsZero() {
		// By the stream's own subjects: one request, however many there are.
		before, err := dl.stream.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("stream info %s: %w", DeadLetterStream, err)
		}
		var opts []jetstream.StreamPurgeOpt
		if f.Consumer != "" {
			opts = append(opts, jetstream.WithPurgeSubject(DeadLetterSubjectPrefix+token(f.Consumer)))
		}
		if err := dl.stream.Purge(ctx, opts...); err != nil {
			return 0, fmt.Errorf("purge %s: %w", DeadLetterStream, err)
		}
		after, err := dl.stream.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("stream info %s: %w", DeadLetterStream, err)
		}
		return before.State.Msgs - min(after.State.Msgs, before.State.Msgs), nil
	}
	seqs, err := dl.seqs(ctx, f)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, seq := range seqs {
		switch err := dl.Delete(ctx, seq); {
		case errors.Is(err, ErrDeadLetterNotFound):
		case err != nil:
			return n, err
		default:
			n++
		}
	}
	return n, nil
}

func (dl *DeadLetters) seqs(ctx context.Context, f DeadLetterFilter) ([]uint64, error) {
	var seqs []uint64
	err := dl.scan(ctx, f, func(d DeadLetter) { seqs = append(seqs, d.Seq) })
	return seqs, err
}

// scanBatch and scanWait bound one fetch while scanning the stream.
const (
	scanBatch = 256
	scanWait  = 2 * time.Second
)

// scan calls fn with every dead letter f selects, in stream order, through
// an ordered (ephemeral, unacknowledged) consumer: a read that leaves no
// trace and does not disturb anyone.
func (dl *DeadLetters) scan(ctx context.Context, f DeadLetterFilter, fn func(DeadLetter)) error {
	if err := f.Validate(); err != nil {
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{DeadLetterSubjectPrefix + ">"}}
	if f.Consumer != "" {
		cfg.FilterSubjects = []string{DeadLetterSubjectPrefix + token(f.Consumer)}
	}
	if !f.Since.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		since := f.Since
		cfg.OptStartTime = &since
	}
	cfg.InactiveThreshold = time.Minute // in case the delete below does not happen
	cons, err := dl.bus.js.OrderedConsumer(ctx, DeadLetterStream, cfg)
	if err != nil {
		return fmt.Errorf("read %s: %w", DeadLetterStream, err)
	}
	defer func() {
		if ci := cons.CachedInfo(); ci != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = dl.bus.js.DeleteConsumer(dctx, DeadLetterStream, ci.Name)
			cancel()
		}
	}()
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read %s: %w", DeadLetterStream, err)
	}
	// A fetch asks for no more than is pending, so that it returns as soon
	// as those arrived instead of waiting for a full batch.
	for pending := info.NumPending; pending > 0; {
		fctx, cancel := context.WithTimeout(ctx, scanWait)
		batch, err := cons.Fetch(int(min(pending, scanBatch)), jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			return fmt.Errorf("read %s: %w", DeadLetterStream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				cancel()
				return fmt.Errorf("read %s: %w", DeadLetterStream, err)
			}
			d := decodeDeadLetter(meta.Sequence.Stream, meta.Timestamp, m.Subject(), m.Headers(), m.Data())
			if f.matches(&d) {
				fn(d)
			}
			pending = meta.NumPending
		}
		cancel()
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("read %s: %w", DeadLetterStream, err)
		}
		if n == 0 {
			return nil // what was pending was deleted meanwhile
		}
	}
	return nil
}

// decodeDeadLetter reads what consumer.go wrote on a dead letter.
func decodeDeadLetter(seq uint64, at time.Time, subject string, h nats.Header, data []byte) DeadLetter {
	// Dead letters are parked as JSON; one parked compressed (its payload
	// was unreadable then) is shown decoded if it can be now, and replayed
	// with the header that matches what is shown.
	if ph, pdata, err := plainPayload(h, data); err == nil {
		h, data = ph, pdata
	}
	d := DeadLetter{
		Seq:       seq,
		Time:      at.UTC(),
		Consumer:  h.Get(HeaderDeadConsumer),
		Subject:   h.Get(HeaderOriginalSubject),
		Stream:    h.Get(HeaderOriginalStream),
		FindingID: h.Get(HeaderFindingID),
		Reason:    h.Get(HeaderDeadReason),
		Header:    h,
		Data:      data,
	}
	if d.Consumer == "" {
		d.Consumer = strings.TrimPrefix(subject, DeadLetterSubjectPrefix)
	}
	d.StreamSeq, _ = strconv.ParseUint(h.Get(HeaderOriginalSeq), 10, 64)
	d.Deliveries, _ = strconv.Atoi(h.Get(HeaderDeadDeliveries))
	d.ReplayOf, _ = strconv.ParseUint(h.Get(HeaderReplayOf), 10, 64)
	if sink, ok := strings.CutPrefix(d.Subject, FindingsSubjectPrefix); ok {
		d.Sink = sink
	}
	if d.Stream == EventsStream {
		// An event's ID is its Nats-Msg-Id, which the dead letter does not
		// keep (it would be a duplicate there); it is the payload's first field.
		var ev struct {
			ID string `json:"id"`
		}
		if gojson.Unmarshal(data, &ev) == nil {
			d.EventID = ev.ID
		}
	}
	return d
}
