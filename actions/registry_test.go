package actions_test

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/plugins"
	"github.com/medichq/medic/internal/testkit"
)

// Each action takes only the part of actions.Env it uses (its Runner
// declares it as an interface); the golden file lists that part per
// action, so an action that starts to need more of medic says so in
// review. No action takes the whole of Env.
func TestWhatEachActionUses(t *testing.T) {
	t.Parallel()
	reg := plugins.Builtin().Actions
	all := reflect.TypeFor[*actions.Env]().NumMethod()
	var b strings.Builder
	for _, name := range reg.Names() {
		uses := reg.Uses(name)
		if uses == nil || len(uses) >= all {
			t.Errorf("action %s uses %v of Env's %d methods: want a declared part, not all", name, uses, all)
		}
		used := "nothing"
		if len(uses) > 0 {
			used = strings.Join(uses, ", ")
		}
		fmt.Fprintf(&b, "%s: %s\n", name, used)
	}
	testkit.Golden(t, "testdata/uses.golden", []byte(b.String()))
}

type noParams struct{}

func newNoParams() *noParams { return &noParams{} }

// A Runner whose D is not an interface Env satisfies cannot register: the
// panic names the action and the type, and the name stays free.
func TestAddRefusesDepsEnvCannotGive(t *testing.T) {
	t.Parallel()
	for name, add := range map[string]func(r *actions.Registry){
		"the whole Env": func(r *actions.Registry) {
			actions.Add(r, "deps_test", "doc", newNoParams, func(*noParams) (actions.Runner[*actions.Env], error) { return nil, nil })
		},
		"a method Env lacks": func(r *actions.Registry) {
			actions.Add(r, "deps_test", "doc", newNoParams, func(*noParams) (actions.Runner[interface{ Secret() string }], error) {
				return nil, nil
			})
		},
		"a method of another type": func(r *actions.Registry) {
			actions.Add(r, "deps_test", "doc", newNoParams, func(*noParams) (actions.Runner[interface{ Cluster() int }], error) {
				return nil, nil
			})
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := actions.NewRegistry()
			func() {
				defer func() {
					msg, _ := recover().(string)
					if !strings.Contains(msg, `action "deps_test": its Runner must take an interface of Env's methods`) {
						t.Errorf("registered; recovered %q", msg)
					}
				}()
				add(r)
			}()
			if r.Has("deps_test") || r.Uses("deps_test") != nil {
				t.Errorf("deps_test is registered: uses %v", r.Uses("deps_test"))
			}
		})
	}
}

// An action sees Env through its D: what it declared, read from the Env
// the engine passes, and nothing configured from a nil Env.
func TestRunnerSeesEnvAsItsDeps(t *testing.T) {
	t.Parallel()
	type deps = interface {
		Cluster() string
		Log() *slog.Logger
	}
	r := actions.NewRegistry()
	actions.Add(r, "cluster_title", "doc", newNoParams, func(*noParams) (actions.Runner[deps], error) {
		return actions.RunFunc[deps](func(_ context.Context, d deps, f *event.Finding) error {
			if d.Log() == nil {
				return fmt.Errorf("no logger")
			}
			f.Title = "cluster " + d.Cluster()
			return nil
		}), nil
	})
	if got := r.Uses("cluster_title"); !reflect.DeepEqual(got, []string{"Cluster", "Log"}) {
		t.Errorf("Uses = %v, want [Cluster Log]", got)
	}
	a, err := r.Build("cluster_title", &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		env  *actions.Env
		want string
	}{
		{&actions.Env{ClusterName: "prod-eu"}, "cluster prod-eu"},
		{nil, "cluster "},
	} {
		f := &event.Finding{}
		if err := a.Run(t.Context(), tt.env, f); err != nil || f.Title != tt.want {
			t.Errorf("env %+v: title %q, err %v; want %q", tt.env, f.Title, err, tt.want)
		}
	}
}
