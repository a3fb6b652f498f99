package triggers

import (
	"context"

	"github.com/medichq/medic/event"
)

// Publisher stores events durably. Sources call it and answer their caller
// only after it returns, so an accepted event is never lost.
type Publisher interface {
	// Publish returns nil only once every event is stored or recognised as a
	// duplicate of one already stored.
	Publish(ctx context.Context, events []event.Event) (PublishResult, error)
}

// PublishResult counts what happened to a batch.
type PublishResult struct {
	Stored     int
	Duplicates int
}
