package sinks_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/medichq/medic/sinks"
)

type noParams struct{}

func newNoParams() *noParams { return &noParams{} }

// A sink's New must take an interface of what it uses of Deps: the whole
// struct, or a method Deps does not have, is refused when it registers,
// before any configuration could start it.
func TestAddRefusesDepsItCannotGive(t *testing.T) {
	t.Parallel()
	r := sinks.NewRegistry()
	for name, register := range map[string]func(){
		"the whole struct": func() {
			sinks.Add(r, "deps_test_struct", "doc", newNoParams,
				func(context.Context, string, noParams, sinks.Deps) (sinks.Sink, error) { return nil, nil })
		},
		"a method Deps lacks": func() {
			sinks.Add(r, "deps_test_missing", "doc", newNoParams,
				func(context.Context, string, noParams, interface{ Secret() string }) (sinks.Sink, error) {
					return nil, nil
				})
		},
		"a method of another type": func() {
			sinks.Add(r, "deps_test_mistyped", "doc", newNoParams,
				func(context.Context, string, noParams, interface{ Logger() *strings.Builder }) (sinks.Sink, error) {
					return nil, nil
				})
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(r.(string), "interface of Deps's methods") {
					t.Errorf("registered; recovered %v", r)
				}
			}()
			register()
		})
	}
	for _, typ := range []string{"deps_test_struct", "deps_test_missing", "deps_test_mistyped"} {
		if r.Uses(typ) != nil {
			t.Errorf("%s is listed as registered: %v", typ, r.Uses(typ))
		}
	}
}

// What a test leaves out of Deps reads as "none": no logging, no links, no
// bucket (the sinks then keep their state in memory).
func TestZeroDeps(t *testing.T) {
	t.Parallel()
	var d sinks.Deps
	if d.Logger() == nil {
		t.Error("Logger() is nil")
	}
	if u := d.FindingURL("f1"); u != "" {
		t.Errorf("FindingURL = %q, want none", u)
	}
	if kv, err := d.KV(t.Context(), "b", 0); kv != nil || !errors.Is(err, sinks.ErrNoKV) {
		t.Errorf("KV = %v, %v; want ErrNoKV", kv, err)
	}
	if d.Findings() != nil || d.HTTPClient() != nil || d.Stdout() != nil || d.ClusterName() != "" || d.Slack() != (sinks.SlackSettings{}) {
		t.Error("a zero Deps gives something")
	}
	logger := slog.New(slog.DiscardHandler)
	d = sinks.Deps{Log: logger, Cluster: "prod-eu", PageURL: func(id string) string { return "https://medic/f/" + id }}
	if d.Logger() != logger || d.ClusterName() != "prod-eu" || d.FindingURL("f1") != "https://medic/f/f1" {
		t.Errorf("Deps does not give what it holds: %v %q %q", d.Logger(), d.ClusterName(), d.FindingURL("f1"))
	}
}
