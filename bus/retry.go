package bus

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bounds of retryUnanswered. On a NATS cluster a JetStream request can go
// unanswered for seconds in two ordinary situations: a node died and the
// streams it led have no leader until their other replicas elect one
// (nats-server's elections take 4 to 9 seconds, more on a loaded machine),
// and several medic replicas starting together create the same stream,
// when the server answers only the first of them. attempt bounds one try,
// since a request to a dead leader may get no answer at all.
const (
	unansweredRetry   = 15 * time.Second
	unansweredAttempt = 2 * time.Second
)

// retryUnanswered runs op, which must be idempotent, until it succeeds,
// fails for another reason than an unanswered request, or
// unansweredRetry (or ctx) runs out.
func retryUnanswered(ctx context.Context, op func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, unansweredRetry)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		actx, acancel := context.WithTimeout(ctx, unansweredAttempt)
		err := op(actx)
		acancel()
		if err == nil || !unanswered(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// unanswered reports whether err is what a request gets while its stream
// has no leader, the server did not answer, or the client is reconnecting
// to another node.
func unanswered(err error) bool {
	for _, e := range []error{jetstream.ErrNoStreamResponse, nats.ErrNoResponders, nats.ErrTimeout,
		context.DeadlineExceeded, nats.ErrConnectionReconnecting, nats.ErrDisconnected} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
