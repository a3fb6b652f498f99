package app

import (
	"net/http"
	"slices"

	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/sources/alertmanager"
	"github.com/medichq/medic/sources/webhook"
	webhooktrig "github.com/medichq/medic/triggers/webhook"
)

// webhookSourceRoutes mounts /api/webhooks/{name} for webhook_sources, each
// source with its own credentials, sharing the intake's bounds and metrics
// with /api/alerts.
func (a *App) webhookSourceRoutes(mux *http.ServeMux, inFlight *alertmanager.InFlight, caps alertmanager.Caps, metrics *alertmanager.Metrics) error {
	if len(a.cfg.WebhookSources) == 0 {
		return nil
	}
	// A source's body is one event, not a list of alerts: the alerts cap
	// means nothing there (its arrays are data), the decoded-bytes caps and
	// the shared budget still bound it.
	caps.MaxAlerts = 0
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

// warnUnknownWebhookSources logs the on_webhook triggers of set that name a
// source webhook_sources does not declare: they can never fire, which is
// most likely a typo or a source left out of the configuration.
func (a *App) warnUnknownWebhookSources(set *playbooks.Set) {
	var names []string
	for i := range a.cfg.WebhookSources {
		names = append(names, a.cfg.WebhookSources[i].Name)
	}
	for _, pb := range set.Playbooks {
		for _, t := range pb.Triggers {
			if wt, ok := t.Trigger.(*webhooktrig.Trigger); ok && wt.Source() != "" && !slices.Contains(names, wt.Source()) {
				a.logger.Warn("a playbook's on_webhook names a source webhook_sources does not declare; it cannot fire",
					"playbook", pb.Name, "file", pb.File, "line", t.Line, "source", wt.Source(), "declared", names)
			}
		}
	}
}
