package triggers_test

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/triggers"
)

type always struct{}

func (always) Kinds() []event.Kind              { return []event.Kind{event.KindPrometheusAlert} }
func (always) Match(*event.Event) bool          { return true }
func newParams() *struct{}                      { return &struct{}{} }
func build(*struct{}) (triggers.Trigger, error) { return always{}, nil }

func register(r *triggers.Registry) { triggers.Add(r, "on_test", "doc", newParams, build) }

// A registry holds what it was given and nothing else: no package-level
// registry leaks triggers in, and a nil one (a zero playbooks.Options)
// knows no trigger instead of crashing.
func TestRegistryHoldsWhatItWasGiven(t *testing.T) {
	t.Parallel()
	node := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	r := triggers.NewRegistry(register)
	if !r.Has("on_test") || len(r.Names()) != 1 || len(r.Definitions()) != 1 {
		t.Fatalf("registry with one trigger: %v", r.Names())
	}
	if _, err := r.Build("on_test", node); err != nil {
		t.Fatal(err)
	}
	for name, empty := range map[string]*triggers.Registry{"empty": triggers.NewRegistry(), "nil": nil} {
		if empty.Has("on_test") || len(empty.Names()) != 0 || len(empty.Definitions()) != 0 {
			t.Errorf("%s registry has %v", name, empty.Names())
		}
		if _, err := empty.Build("on_test", node); err == nil || !strings.Contains(err.Error(), `unknown trigger "on_test"`) {
			t.Errorf("%s registry builds on_test: %v", name, err)
		}
	}
}

// Registering a name twice is a programming error, caught when the
// registry is built.
func TestRegistryRefusesADuplicate(t *testing.T) {
	t.Parallel()
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), `trigger "on_test" registered twice`) {
			t.Errorf("recovered %v", r)
		}
	}()
	triggers.NewRegistry(register, register)
}
