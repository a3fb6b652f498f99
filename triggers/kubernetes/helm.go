package kubernetes

import (
	"errors"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
	"github.com/medichq/medic/triggers"
)

// Helm trigger names.
const (
	TriggerHelmUnhealthy = "on_helm_release_unhealthy"
	TriggerHelmFail      = "on_helm_release_fail"
	TriggerHelmDeploy    = "on_helm_release_deploy"
	TriggerHelmUninstall = "on_helm_release_uninstall"
)

// HelmParams are the parameters of the Helm triggers.
type HelmParams struct {
	Common    `yaml:",inline"`
	RateLimit Duration `yaml:"rate_limit"`
}

// HelmUnhealthyParams are on_helm_release_unhealthy's parameters.
type HelmUnhealthyParams struct {
	Common `yaml:",inline"`
	// Duration is how long a release may stay pending-install,
	// pending-upgrade or pending-rollback before it counts as stuck
	// (default 15m, Robusta's 900 seconds).
	Duration  Duration `yaml:"duration"`
	RateLimit Duration `yaml:"rate_limit"`
}

func registerHelm(r *triggers.Registry) {
	for _, h := range []struct{ name, ev, doc string }{
		{TriggerHelmDeploy, kubeevent.HelmDeploy, "Runs when a Helm release revision is deployed (install, upgrade or rollback succeeded)."},
		{TriggerHelmFail, kubeevent.HelmFail, "Runs when a Helm release revision fails."},
		{TriggerHelmUninstall, kubeevent.HelmUninstall, "Runs when a Helm release is uninstalled."},
	} {
		triggers.Add(r, h.name, h.doc+" Needs kubernetes.helm_releases (medic reads Helm's release Secrets).",
			func() *HelmParams { return &HelmParams{} },
			func(p *HelmParams) (triggers.Trigger, error) {
				return build(h.name, kubeevent.KindHelmRelease, p, p.Common, p.RateLimit.D(), 0, func(ev *event.Event) bool {
					return ev.Labels[kubeevent.LabelHelmEvent] == h.ev
				})
			})
	}
	triggers.Add(r, TriggerHelmUnhealthy,
		"Runs when a Helm release stays pending (install, upgrade, rollback) for duration. Needs kubernetes.helm_releases.",
		func() *HelmUnhealthyParams { return &HelmUnhealthyParams{Duration: Duration(15 * time.Minute)} },
		func(p *HelmUnhealthyParams) (triggers.Trigger, error) {
			if p.Duration <= 0 {
				return nil, errors.New("duration: must be positive")
			}
			want := p.Duration.String()
			return build(TriggerHelmUnhealthy, kubeevent.KindHelmRelease, p, p.Common, p.RateLimit.D(), p.Duration.D(), func(ev *event.Event) bool {
				return ev.Labels[kubeevent.LabelHelmEvent] == kubeevent.HelmUnhealthy && ev.Labels[kubeevent.LabelPendingFor] == want
			})
		})
}
