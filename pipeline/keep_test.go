package pipeline

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/interact"
)

// A silenced finding is kept in the finding store behind the page, and the
// debug line says who silenced it, why, and where the page is.
func TestKeepSilenced(t *testing.T) {
	t.Parallel()
	b := openBus(t)
	ctx := context.Background()
	store, err := interact.NewFindingStore(ctx, interact.KVOpener(b.JetStream(), 1), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	k := &Keep{Store: store, Links: interact.NewLinksWithKey([]byte("0123456789abcdef0123456789abcdef"), "https://medic.example", time.Hour),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	ev := alert("Watchdog", "none", event.StatusFiring, nil)
	f := event.NewFinding(*ev, ev.StartsAt)
	f.Silenced = &event.Silence{By: "name_silencer", Reason: "alert name Watchdog"}
	k.Keep(ctx, f)
	got, err := store.Get(ctx, f.ID)
	if err != nil {
		t.Fatalf("the silenced finding is not in the store: %v", err)
	}
	if got.Silenced == nil || got.Silenced.By != "name_silencer" {
		t.Errorf("stored finding silenced %+v", got.Silenced)
	}
	for _, want := range []string{"finding silenced: delivered to no sink", "silenced_by=name_silencer", `page="https://medic.example/findings/` + f.ID + "?"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %q lacks %q", logs.String(), want)
		}
	}
}
