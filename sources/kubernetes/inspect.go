package kubernetes

import "time"

// The methods below let kubefixture drive a detector to quiescence over a
// fixture; the server does not call them.

// Watching reports whether an informer for resource ("pods", "jobs",
// "events", "nodes") runs across all namespaces: only the objects one looks
// at are worth waiting for.
func (d *Detector) Watching(resource string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.started[resource+"/"]
}

// NextTimer is the earliest delayed re-check still waiting.
func (d *Detector) NextTimer() (time.Time, bool) {
	d.timerMu.Lock()
	defer d.timerMu.Unlock()
	var at time.Time
	ok := false
	for _, a := range d.timers {
		if a.fired.Load() {
			continue
		}
		if !ok || a.at.Before(at) {
			at, ok = a.at, true
		}
	}
	return at, ok
}
