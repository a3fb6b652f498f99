// Package all lists every sink type medic ships, so that the binary's
// wiring (internal/plugins.Builtin) adds them with one call instead of
// knowing each sink.
//
// Adding a sink is one package under sinks/<type>/ that exports
// Register(*sinks.Registry), plus one line here.
package all

import (
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/discord"
	"github.com/medichq/medic/sinks/email"
	"github.com/medichq/medic/sinks/file"
	"github.com/medichq/medic/sinks/googlechat"
	"github.com/medichq/medic/sinks/jira"
	"github.com/medichq/medic/sinks/kafka"
	"github.com/medichq/medic/sinks/mattermost"
	"github.com/medichq/medic/sinks/opsgenie"
	"github.com/medichq/medic/sinks/pagerduty"
	"github.com/medichq/medic/sinks/slack"
	"github.com/medichq/medic/sinks/stdout"
	"github.com/medichq/medic/sinks/teams"
	"github.com/medichq/medic/sinks/telegram"
	"github.com/medichq/medic/sinks/victorops"
	"github.com/medichq/medic/sinks/webex"
	"github.com/medichq/medic/sinks/webhook"
)

// Register adds every sink type medic ships to r.
func Register(r *sinks.Registry) {
	discord.Register(r)
	email.Register(r)
	file.Register(r)
	googlechat.Register(r)
	jira.Register(r)
	kafka.Register(r)
	mattermost.Register(r)
	opsgenie.Register(r)
	pagerduty.Register(r)
	slack.Register(r)
	stdout.Register(r)
	teams.Register(r)
	telegram.Register(r)
	victorops.Register(r)
	webex.Register(r)
	webhook.Register(r)
}
