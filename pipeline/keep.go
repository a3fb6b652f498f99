package pipeline

import (
	"context"
	"log/slog"

	"github.com/medichq/medic/event"
)

// FindingStore keeps a finding for the finding page: *interact.FindingStore.
type FindingStore interface {
	Put(ctx context.Context, f *event.Finding) error
}

// PageLinks signs a link to a finding's page; "" without public_url:
// *interact.Links.
type PageLinks interface {
	URL(findingID string) string
}

// Keep keeps a silenced finding where an operator can still see it: the
// finding store behind the finding page, with the page's signed link in
// the debug log. It delivers to no sink and dead-letters nothing.
type Keep struct {
	Store  FindingStore // nil: the log line only
	Links  PageLinks    // nil: no link in the log line
	Logger *slog.Logger
}

// Keep stores f. Failing to store it does not fail the event: the
// silencer's decision stands, and the log line says what was silenced.
func (k *Keep) Keep(ctx context.Context, f *event.Finding) {
	log := k.Logger.With("finding", f.ID, "silenced_by", f.Silenced.By, "reason", f.Silenced.Reason)
	if k.Store != nil {
		if err := k.Store.Put(ctx, f); err != nil {
			log.Warn("silenced finding not kept for the finding page", "err", err)
			return
		}
		if k.Links != nil {
			if u := k.Links.URL(f.ID); u != "" {
				log = log.With("page", u)
			}
		}
	}
	log.Debug("finding silenced: delivered to no sink")
}
