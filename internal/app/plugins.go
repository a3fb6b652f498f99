package app

import "github.com/medichq/medic/internal/plugins"

// WithPlugins builds medic's playbooks and sinks from set instead of
// plugins.Builtin(): cmd/medic passes the set it lists and validates with,
// so that serve runs what `medic playbooks list` shows.
func WithPlugins(set *plugins.Set) Option {
	return func(o *options) { o.plugins = set }
}
