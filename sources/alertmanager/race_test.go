//go:build race

package alertmanager

// raceEnabled says the race detector is on, which about doubles what the
// decoder allocates.
const raceEnabled = true
