// Package webhookevent is the vocabulary of the events the generic webhook
// sources publish (sources/webhook writes them, on_webhook in
// triggers/webhook reads them), so that neither side imports the other.
package webhookevent

import (
	"regexp"

	"github.com/medichq/medic/event"
)

// Kind is the kind of every event of a webhook source.
const Kind event.Kind = "webhook"

// SourcePrefix prefixes the events' source: "webhook/<name>".
const SourcePrefix = "webhook/"

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$`)

// ValidName reports whether name is a webhook source's name: lower-case
// letters, digits, '-' and '_', the URL's last segment.
func ValidName(name string) bool { return nameRE.MatchString(name) }
