// Package plugins links every built-in trigger, action and sink into the
// binary. Their packages register themselves from init; importing them here
// is the one line that adding a new one takes.
package plugins

import (
	_ "github.com/medichq/medic/actions"               // built-in actions
	_ "github.com/medichq/medic/sinks/all"             // every sink type
	_ "github.com/medichq/medic/triggers/alertmanager" // on_prometheus_alert
)
