package bus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestReclaimRemovesOnlyProcessedMessages fills a stream's subjects, lets
// one consumer process part of them and reclaims: what the consumer
// acknowledged goes, whichever way the purge is done (by sequence when the
// consumers take every subject the stream holds, else by subject), and
// nothing unprocessed or on a subject nobody consumes does.
func TestReclaimRemovesOnlyProcessedMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		stream      string
		filter      string
		subject     string // what the consumer processes
		orphan      string // a subject no consumer takes ("" for none)
		orphans     int    // published before the consumer's messages
		processed   int    // of the consumer's messages, acked in order
		unprocessed int
	}{
		{name: "events: the engine takes every subject", stream: EventsStream, filter: EventsSubjectPrefix + ">",
			subject: EventsSubjectPrefix + "prometheus_alert", processed: 30, unprocessed: 7},
		{name: "findings: one sink holds every subject", stream: FindingsStream, filter: FindingSubject("file"),
			subject: FindingSubject("file"), processed: 25, unprocessed: 5},
		{name: "findings: a subject nobody consumes stays", stream: FindingsStream, filter: FindingSubject("file"),
			subject: FindingSubject("file"), orphan: FindingSubject("gone"), orphans: 6, processed: 20, unprocessed: 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := openBus(t, testConfig(t))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			publish := func(subject string, n int) {
				t.Helper()
				for i := range n {
					if _, err := b.js.Publish(ctx, subject, fmt.Appendf(nil, "message %d", i)); err != nil {
						t.Fatal(err)
					}
				}
			}
			publish(tc.orphan, tc.orphans)
			publish(tc.subject, tc.processed+tc.unprocessed)
			cons, err := b.js.CreateOrUpdateConsumer(ctx, tc.stream, jetstream.ConsumerConfig{
				Durable: "reader", FilterSubject: tc.filter, AckPolicy: jetstream.AckExplicitPolicy})
			if err != nil {
				t.Fatal(err)
			}
			batch, err := cons.Fetch(tc.processed, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			acked := 0
			for m := range batch.Messages() {
				if err := m.DoubleAck(ctx); err != nil {
					t.Fatal(err)
				}
				acked++
			}
			if acked != tc.processed {
				t.Fatalf("acked %d messages, want %d", acked, tc.processed)
			}

			freed, err := b.reclaim(ctx, tc.stream)
			if err != nil {
				t.Fatal(err)
			}
			if freed != uint64(tc.processed) {
				t.Errorf("reclaim freed %d messages, want the %d processed ones", freed, tc.processed)
			}
			s, err := b.js.Stream(ctx, tc.stream)
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
			if err != nil {
				t.Fatal(err)
			}
			if got := info.State.Subjects[tc.subject]; got != uint64(tc.unprocessed) {
				t.Errorf("%s holds %d messages after reclaim, want the %d unprocessed ones", tc.subject, got, tc.unprocessed)
			}
			if tc.orphan != "" {
				if got := info.State.Subjects[tc.orphan]; got != uint64(tc.orphans) {
					t.Errorf("%s (no consumer) holds %d messages after reclaim, want all %d", tc.orphan, got, tc.orphans)
				}
			}
			// The unprocessed messages are still delivered, in order.
			rest, err := cons.Fetch(tc.unprocessed, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			want := tc.processed
			for m := range rest.Messages() {
				if got, exp := string(m.Data()), fmt.Sprintf("message %d", want); got != exp {
					t.Fatalf("after reclaim the consumer got %q, want %q", got, exp)
				}
				want++
			}
			if want != tc.processed+tc.unprocessed {
				t.Fatalf("after reclaim the consumer got messages %d..%d, want up to %d", tc.processed, want-1, tc.processed+tc.unprocessed-1)
			}
		})
	}
}
