// Package all registers every sink type medic ships with by importing its
// package for the side effect of its init. The binary imports this package
// once instead of knowing each sink.
//
// Adding a sink is one file under sinks/<type>/ that calls sinks.RegisterNew
// from init, plus one import line here.
package all

import (
	_ "github.com/medichq/medic/sinks/discord"
	_ "github.com/medichq/medic/sinks/email"
	_ "github.com/medichq/medic/sinks/file"
	_ "github.com/medichq/medic/sinks/googlechat"
	_ "github.com/medichq/medic/sinks/jira"
	_ "github.com/medichq/medic/sinks/kafka"
	_ "github.com/medichq/medic/sinks/mattermost"
	_ "github.com/medichq/medic/sinks/opsgenie"
	_ "github.com/medichq/medic/sinks/pagerduty"
	_ "github.com/medichq/medic/sinks/slack"
	_ "github.com/medichq/medic/sinks/stdout"
	_ "github.com/medichq/medic/sinks/teams"
	_ "github.com/medichq/medic/sinks/telegram"
	_ "github.com/medichq/medic/sinks/victorops"
	_ "github.com/medichq/medic/sinks/webex"
	_ "github.com/medichq/medic/sinks/webhook"
)
