package bus

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// retryUnanswered retries what an election or a concurrent create leaves
// unanswered, and nothing else.
func TestRetryUnanswered(t *testing.T) {
	t.Parallel()
	refused := errors.New("stream name already in use with a different configuration")
	cases := []struct {
		name      string
		errs      []error // returned by the attempts in turn, then nil
		wantCalls int
		wantErr   error
	}{
		{"first try", nil, 1, nil},
		{"no stream leader", []error{jetstream.ErrNoStreamResponse, fmt.Errorf("put: %w", jetstream.ErrNoStreamResponse)}, 3, nil},
		{"no answer", []error{context.DeadlineExceeded, nats.ErrTimeout, nats.ErrNoResponders}, 4, nil},
		{"reconnecting", []error{nats.ErrConnectionReconnecting, nats.ErrDisconnected}, 3, nil},
		{"refused is final", []error{jetstream.ErrNoStreamResponse, refused}, 2, refused},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			err := retryUnanswered(context.Background(), func(ctx context.Context) error {
				calls++
				if _, ok := ctx.Deadline(); !ok {
					t.Error("an attempt without a deadline")
				}
				if calls <= len(c.errs) {
					return c.errs[calls-1]
				}
				return nil
			})
			if !errors.Is(err, c.wantErr) || (c.wantErr == nil && err != nil) {
				t.Errorf("err %v, want %v", err, c.wantErr)
			}
			if calls != c.wantCalls {
				t.Errorf("%d calls, want %d", calls, c.wantCalls)
			}
		})
	}
}

// A cancelled caller ends the retries with the last error.
func TestRetryUnansweredStopsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := retryUnanswered(ctx, func(context.Context) error {
		calls++
		if calls == 2 {
			cancel()
		}
		return jetstream.ErrNoStreamResponse
	})
	if !errors.Is(err, jetstream.ErrNoStreamResponse) || calls != 2 {
		t.Fatalf("err %v after %d calls, want the last error after 2", err, calls)
	}
}
