package kubernetes

import "github.com/medichq/medic/triggers"

// Duration is triggers.Duration: seconds (rate_limit: 3600) or a Go
// duration ("4h"), the notation every trigger's rate_limit takes.
type Duration = triggers.Duration
