package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func msgsOn(subject string, n int) ([]*nats.Msg, []string) {
	msgs := make([]*nats.Msg, n)
	ids := make([]string, n)
	for i := range n {
		msgs[i] = &nats.Msg{Subject: subject, Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}
		ids[i] = fmt.Sprintf("%s-%d", subject, i)
	}
	return msgs, ids
}

// No stream listens on the subject: JetStream's 503 status is an error, not
// a hang until the timeout.
func TestBatchPublishWithoutStream(t *testing.T) {
	b := openBus(t, testConfig(t))
	msgs, ids := msgsOn("nowhere.x", 3)
	stored, dups, err := b.publishAll(context.Background(), EventsStream, msgs, ids)
	if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("err = %v, want ErrNoStreamResponse", err)
	}
	if stored != 0 || dups != 0 {
		t.Fatalf("stored %d, duplicates %d", stored, dups)
	}
}

// A stream that refuses some messages: the error names the refused IDs
// (the first three of each cause, TestGroupStoreErrors) and the ones stored
// are counted.
func TestBatchPublishPartlyRefused(t *testing.T) {
	b := openBus(t, testConfig(t))
	ctx := context.Background()
	if _, err := b.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "SMALL", Subjects: []string{"small.>"}, Storage: jetstream.MemoryStorage,
		MaxMsgs: 2, Discard: jetstream.DiscardNew,
	}); err != nil {
		t.Fatal(err)
	}
	msgs, ids := msgsOn("small.x", 4)
	stored, dups, err := b.publishAll(ctx, EventsStream, msgs, ids)
	if stored != 2 || dups != 0 {
		t.Fatalf("stored %d, duplicates %d; want 2, 0", stored, dups)
	}
	if err == nil || !strings.Contains(err.Error(), "small.x-2") || !strings.Contains(err.Error(), "small.x-3") ||
		strings.Contains(err.Error(), "small.x-1") {
		t.Fatalf("err = %v, want the two refused IDs named", err)
	}
}

// Something answers nothing: the publish gives up at the bus's publish
// timeout and says how many are missing.
func TestBatchPublishTimesOut(t *testing.T) {
	cfg := testConfig(t)
	cfg.PublishTimeout = 300 * time.Millisecond
	b := openBus(t, cfg)
	sub, err := b.nc.Subscribe("silent.>", func(*nats.Msg) {}) // a responder, so no 503
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	msgs, ids := msgsOn("silent.x", 2)
	_, _, err = b.publishAll(context.Background(), EventsStream, msgs, ids)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "2 messages") {
		t.Fatalf("err = %v, want a deadline naming 2 messages", err)
	}
	b.pub.mu.Lock()
	left := len(b.pub.batches)
	b.pub.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d batches still registered after the timeout", left)
	}
}

// Concurrent batches, as concurrent webhooks make them, each get their own
// acks counted.
func TestBatchPublishConcurrent(t *testing.T) {
	b := openBus(t, testConfig(t))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 {
		wg.Go(func() {
			for round := range 5 {
				msgs, ids := msgsOn(fmt.Sprintf("%sc%d.r%d", EventsSubjectPrefix, g, round), 50)
				stored, dups, err := b.publishAll(ctx, EventsStream, msgs, ids)
				if err != nil || stored != 50 || dups != 0 {
					errs <- fmt.Errorf("batch %d/%d: stored %d, duplicates %d, err %v", g, round, stored, dups, err)
					return
				}
				// The same batch again is all duplicates.
				again, _ := msgsOn(fmt.Sprintf("%sc%d.r%d", EventsSubjectPrefix, g, round), 50)
				stored, dups, err = b.publishAll(ctx, EventsStream, again, ids)
				if err != nil || stored != 0 || dups != 50 {
					errs <- fmt.Errorf("batch %d/%d again: stored %d, duplicates %d, err %v", g, round, stored, dups, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	info, err := b.js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 8*5*50 {
		t.Fatalf("stream holds %d messages, want %d", n, 8*5*50)
	}
}

// A batch refused for one reason is one line naming the first message and
// how many more, not one line per message; distinct causes stay apart, and
// errors.Is and errors.As still see the cause.
func TestGroupStoreErrors(t *testing.T) {
	t.Parallel()
	full := &storeError{reason: reasonFull, err: fmt.Errorf("%w: jetstream error 503 (10077): maximum bytes exceeded", ErrStreamFull)}
	other := errors.New("jetstream error 503 (10077): write failed")
	for _, tc := range []struct {
		name     string
		failures []storeFailure
		want     string
	}{
		{"none", nil, ""},
		{"one", []storeFailure{{"a", full}}, "store a: stream is full: jetstream error 503 (10077): maximum bytes exceeded"},
		{"one cause for a whole batch", []storeFailure{{"a", full}, {"b", full}, {"c", full}, {"d", full}, {"e", full}},
			"store a, b, c and 2 more: stream is full: jetstream error 503 (10077): maximum bytes exceeded"},
		{"two causes", []storeFailure{{"a", full}, {"b", other}, {"c", full}},
			"store a, c: stream is full: jetstream error 503 (10077): maximum bytes exceeded\nstore b: jetstream error 503 (10077): write failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := groupStoreErrors(tc.failures)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error\n%v\nwant\n%s", err, tc.want)
			}
			var se *storeError
			if !errors.Is(err, ErrStreamFull) || !errors.As(err, &se) || se.reason != reasonFull {
				t.Fatalf("errors.Is(ErrStreamFull) / errors.As(*storeError) lost through the grouping: %v", err)
			}
		})
	}
}
