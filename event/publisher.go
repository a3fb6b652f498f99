package event

import (
	"context"
	"errors"
)

// Publisher stores events durably. Sources call it and answer their caller
// only after it returns, so an accepted event is never lost.
type Publisher interface {
	// Publish returns nil only once every event is stored or recognised as a
	// duplicate of one already stored.
	Publish(ctx context.Context, events []Event) (PublishResult, error)
}

// PublishResult counts what happened to a batch.
type PublishResult struct {
	Stored     int
	Duplicates int
}

// ErrStreamFull is what Publish returns, wrapped, when the bus refused
// events because its stream is at its size limit. Nothing was discarded to
// make room: the intake answers 503 with Retry-After and the sender retries
// once the pipeline has worked off the backlog. The bus package re-exports
// it as bus.ErrStreamFull; it lives here so sources need not import bus.
var ErrStreamFull = errors.New("stream is full")
