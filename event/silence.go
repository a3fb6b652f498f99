package event

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// silencePath is Alertmanager's UI route for a new silence; its filter
// parameter prefills the matchers.
const silencePath = "/#/silences/new?filter="

// SilenceURL is Alertmanager's "new silence" page prefilled with the
// alert's labels (alertname first, the rest sorted), or "" when the event
// did not come from an Alertmanager with a web URL. default_enricher adds it
// as a link and the chat sinks show it as a button.
//
// It runs for every alert of a storm, so it builds the filter in one buffer
// rather than a string per label.
func (e *Event) SilenceURL() string {
	if !isWebURL(e.ExternalURL) || len(e.Labels) == 0 {
		return ""
	}
	keys := make([]string, 0, len(e.Labels))
	size := 2
	for k, v := range e.Labels {
		keys = append(keys, k)
		size += len(k) + len(v) + 4
	}
	slices.SortFunc(keys, func(a, b string) int {
		if (a == "alertname") != (b == "alertname") {
			if a == "alertname" {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	filter := make([]byte, 0, size)
	filter = append(filter, '{')
	for i, k := range keys {
		if i > 0 {
			filter = append(filter, ',')
		}
		filter = append(filter, k...)
		filter = append(filter, '=')
		filter = strconv.AppendQuote(filter, e.Labels[k])
	}
	filter = append(filter, '}')
	return strings.TrimSuffix(e.ExternalURL, "/") + silencePath + url.QueryEscape(string(filter))
}

// isWebURL reports whether s is an absolute http(s) URL with a host,
// without parsing it (url.Parse allocates, and this runs per alert).
func isWebURL(s string) bool {
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		rest, ok = strings.CutPrefix(s, "http://")
	}
	return ok && rest != "" && rest[0] != '/' && rest[0] != '?' && rest[0] != '#'
}
