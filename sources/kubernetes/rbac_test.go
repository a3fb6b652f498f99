package kubernetes

import (
	"strings"
	"testing"

	"github.com/medichq/medic/event"
)

// What the detector asks the API server for follows the table of watched
// Kinds: a Kind's informer runs for its events, and the Kinds it reads run
// with it.
func TestPermissionsFollowTheKindTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		namespaces []string
		kinds      []event.Kind
		want       string
	}{
		{"nothing wanted", nil, nil, ""},
		{"crash loops read the owners", nil, []event.Kind{event.KindPodCrashLoop},
			"list pods cluster-wide; watch pods cluster-wide; list replicasets.apps cluster-wide; watch replicasets.apps cluster-wide; list jobs.batch cluster-wide; watch jobs.batch cluster-wide"},
		{"job failures alone", []string{"shop"}, []event.Kind{event.KindJobFailure},
			"list jobs.batch in namespace shop; watch jobs.batch in namespace shop"},
		{"nodes are cluster-wide", []string{"a", "b"}, []event.Kind{event.KindNodeNotReady, event.KindKubernetesWarningEvent},
			"list events in namespace a; watch events in namespace a; list events in namespace b; watch events in namespace b; list nodes cluster-wide; watch nodes cluster-wide"},
		{"alerts need nothing of the cluster", nil, []event.Kind{event.KindPrometheusAlert}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, p := range Permissions(tt.namespaces, tt.kinds) {
				got = append(got, p.String())
			}
			if s := strings.Join(got, "; "); s != tt.want {
				t.Errorf("permissions\n got %s\nwant %s", s, tt.want)
			}
		})
	}
}

// Every row of the table is a Kind the detector can start and name.
func TestWatchedKindsAreComplete(t *testing.T) {
	t.Parallel()
	seen := map[event.Kind]string{}
	for _, k := range watchedKinds {
		if k.name == "" || k.resource == "" || k.informer == nil {
			t.Errorf("row %+v lacks a name, resource or informer", k)
		}
		for _, r := range k.reads {
			if _, ok := lookupWatched(r); !ok {
				t.Errorf("%s reads %s, which has no row", k.name, r)
			}
		}
		for _, e := range k.events {
			if other, dup := seen[e]; dup {
				t.Errorf("%s is produced by both %s and %s", e, other, k.name)
			}
			seen[e] = k.name
			if k.handle == nil {
				t.Errorf("%s produces %s but has no handler", k.name, e)
			}
		}
	}
}
