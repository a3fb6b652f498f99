package app

import (
	"net/http"

	"github.com/medichq/medic/triggers/alertmanager"
	"github.com/medichq/medic/triggers/webhook"
)

// webhookSourceRoutes mounts /api/webhooks/{name} for webhook_sources, each
// source with its own credentials, sharing the intake's bounds and metrics
// with /api/alerts.
func (a *App) webhookSourceRoutes(mux *http.ServeMux, inFlight *alertmanager.InFlight, caps alertmanager.Caps, metrics *alertmanager.Metrics) error {
	if len(a.cfg.WebhookSources) == 0 {
		return nil
	}
	h, err := webhook.NewHandler(a.cfg.WebhookSources, a.bus, webhook.Options{
		MaxBodyBytes: a.cfg.Webhook.MaxBodyBytes,
		InFlight:     inFlight,
		BodyTimeout:  a.cfg.Webhook.BodyTimeout,
		Caps:         caps,
		Metrics:      metrics,
		Logger:       a.logger.With("component", "webhook_sources"),
	})
	if err != nil {
		return err
	}
	mux.Handle("/api/webhooks/{name}", h)
	return nil
}
