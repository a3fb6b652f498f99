// Package registry is the one mechanism behind medic's three extension
// points (playbook triggers, actions, sinks): a name, a parameter struct with
// defaults, strict decoding with line numbers, and a builder.
package registry

import (
	"fmt"
	"sort"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/params"
)

// Definition describes one registered entry.
type Definition[T any] struct {
	Name string
	Doc  string
	// NewParams returns a pointer to the parameter struct, filled with defaults.
	NewParams func() any
	build     func(params any) (T, error)
}

// Registry maps names to definitions. The zero value is not usable; use New.
type Registry[T any] struct {
	kind string // "trigger", "action", "sink type": used in error messages
	mu   sync.RWMutex
	defs map[string]Definition[T]
}

// New returns an empty registry whose errors call entries kind.
func New[T any](kind string) *Registry[T] {
	return &Registry[T]{kind: kind, defs: map[string]Definition[T]{}}
}

// Add registers name with parameter struct P. Registering a name twice
// panics: it is a programming error, caught the first time the binary starts.
func Add[P, T any](r *Registry[T], name, doc string, defaults func() *P, build func(*P) (T, error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.defs[name]; dup {
		panic(fmt.Sprintf("%s %q registered twice", r.kind, name))
	}
	r.defs[name] = Definition[T]{
		Name:      name,
		Doc:       doc,
		NewParams: func() any { return defaults() },
		build:     func(p any) (T, error) { return build(p.(*P)) },
	}
}

// Has reports whether name is registered.
func (r *Registry[T]) Has(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.defs[name]
	return ok
}

// Build decodes node strictly into the entry's parameters and builds it.
// Errors carry the line of the offending key or value.
func (r *Registry[T]) Build(name string, node *yaml.Node) (T, error) {
	var zero T
	r.mu.RLock()
	def, ok := r.defs[name]
	r.mu.RUnlock()
	if !ok {
		return zero, fmt.Errorf("unknown %s %q%s", r.kind, name, params.Hint(name, r.Names()))
	}
	p := def.NewParams()
	if err := params.Decode(node, p); err != nil {
		return zero, err
	}
	v, err := def.build(p)
	if err != nil {
		return zero, params.Errorf(node, "%v", err)
	}
	return v, nil
}

// Names lists the registered names, sorted.
func (r *Registry[T]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.defs))
	for n := range r.defs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Definitions lists the definitions sorted by name, for docs and schemas.
func (r *Registry[T]) Definitions() []Definition[T] {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Definition[T], 0, len(r.defs))
	for _, d := range r.defs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
