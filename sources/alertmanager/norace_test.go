//go:build !race

package alertmanager

const raceEnabled = false
