package app

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// Parts stop in the reverse order they were registered, once, and every
// failure is reported with the part's name while the others still stop.
func TestStopRunsInReverseOnce(t *testing.T) {
	t.Parallel()
	var a App
	var order []string
	for _, name := range []string{"lock", "bus", "sinks", "consumer engine", "HTTP server"} {
		a.onStop(name, func(context.Context) error {
			order = append(order, name)
			if name == "sinks" || name == "consumer engine" {
				return errors.New("boom")
			}
			return nil
		})
	}
	err := a.Shutdown(context.Background())
	want := []string{"HTTP server", "consumer engine", "sinks", "bus", "lock"}
	if !slices.Equal(order, want) {
		t.Errorf("stopped %v, want %v", order, want)
	}
	if err == nil || !strings.Contains(err.Error(), "stop sinks: boom") || !strings.Contains(err.Error(), "stop consumer engine: boom") {
		t.Errorf("err = %v, want both failures named", err)
	}
	if err := a.Shutdown(context.Background()); err != nil || len(order) != len(want) {
		t.Errorf("a second Shutdown: %v, stopped %v", err, order)
	}
}
