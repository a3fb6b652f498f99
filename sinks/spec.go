package sinks

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/params"
	"github.com/medichq/medic/scope"
)

// Spec is one configured sink:
//
//   - name: oncall-file
//     type: file
//     default: true        # receives findings of playbooks that name no sinks
//     scope: {include: [{severity: critical|high}]}
//     send_resolved: true  # routing keys: see route.go
//     path: data/findings.jsonl   # every other key is a parameter of the type
type Spec struct {
	Name    string
	Type    string
	Default bool
	Scope   scope.Scope
	// SendResolved false keeps resolved findings from this sink.
	SendResolved bool
	// Stop: when this sink takes a finding, the sinks after it in the
	// configuration do not get it.
	Stop bool
	// Activity, when set, is when the sink is active; MuteIntervals are
	// when it is not. Either way a finding outside is skipped, not lost.
	Activity      *Activity
	MuteIntervals []MuteInterval
	// Params holds the type's own keys, with their original line numbers.
	Params *yaml.Node
	Line   int
}

var sinkNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$`)

// UnmarshalYAML splits the common keys from the type's parameters.
func (s *Spec) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.MappingNode {
		return params.Errorf(node, "a sink must be a mapping with name and type")
	}
	*s = Spec{Default: true, SendResolved: true, Line: node.Line}
	rest := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: node.Line, Column: node.Column}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		var err error
		switch k.Value {
		case "name":
			err = v.Decode(&s.Name)
		case "type":
			err = v.Decode(&s.Type)
		case "default":
			err = v.Decode(&s.Default)
		case "scope":
			err = params.Decode(v, &s.Scope)
		case "send_resolved":
			err = v.Decode(&s.SendResolved)
		case "stop":
			err = v.Decode(&s.Stop)
		case "activity":
			s.Activity, err = decodeActivity(v)
		case "mute_intervals":
			s.MuteIntervals, err = decodeMutes(v)
		default:
			rest.Content = append(rest.Content, k, v)
		}
		if err != nil {
			var pe *params.Error
			if errors.As(err, &pe) {
				return err
			}
			return params.Errorf(v, "%s: %v", k.Value, err)
		}
	}
	s.Params = rest
	return nil
}

// FromConfig decodes one entry of the configuration's sinks (config keeps
// it raw, see config.SinkSpec) and checks it and its parameters without
// starting the sink. Errors carry the entry's lines (*params.Error).
func (r *Registry) FromConfig(c config.SinkSpec) (Spec, error) {
	var s Spec
	if c.Node == nil { // built in Go, not read from a file: no parameters
		s = Spec{Name: c.Name, Type: c.Type, Default: true, SendResolved: true,
			Params: &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}}
	} else if err := s.UnmarshalYAML(c.Node); err != nil {
		return Spec{}, err
	}
	if err := s.Validate(r); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// FromConfigs is FromConfig for each entry; an error names the entry
// ("sinks[1]: …") as config's own errors do.
func (r *Registry) FromConfigs(cs []config.SinkSpec) ([]Spec, error) {
	specs := make([]Spec, len(cs))
	for i := range cs {
		var err error
		if specs[i], err = r.FromConfig(cs[i]); err != nil {
			return nil, fmt.Errorf("sinks[%d]: %w", i, err)
		}
	}
	return specs, nil
}

// Validate checks the spec and its parameters against the sink types of r
// without starting the sink.
func (s *Spec) Validate(r *Registry) error {
	_, err := s.factory(r)
	return err
}

func (s *Spec) factory(r *Registry) (Factory, error) {
	if !sinkNameRE.MatchString(s.Name) {
		return nil, &params.Error{Line: s.Line, Msg: fmt.Sprintf("sink name %q must be 1-64 lowercase letters, digits, '-' or '_'", s.Name)}
	}
	if s.Type == "" {
		return nil, &params.Error{Line: s.Line, Msg: fmt.Sprintf("sink %q: type is required (one of %s)", s.Name, strings.Join(r.Types(), ", "))}
	}
	f, err := r.factory(s.Type, s.Params)
	if err != nil {
		return nil, fmt.Errorf("sink %q: %w", s.Name, err)
	}
	return f, nil
}

// Configured is a started sink with its routing rules.
type Configured struct {
	Spec Spec
	Sink Sink
}

// Set is the configured sinks, in configuration order.
type Set struct {
	byName map[string]*Configured
	order  []string
	specs  []Spec
}

// Start validates every spec against the sink types of r and starts the
// sinks. On error it closes what it started.
func (r *Registry) Start(ctx context.Context, specs []Spec, deps Deps) (*Set, error) {
	set := &Set{byName: map[string]*Configured{}}
	for _, spec := range specs {
		if _, dup := set.byName[spec.Name]; dup {
			set.Close()
			return nil, &params.Error{Line: spec.Line, Msg: fmt.Sprintf("sink %q is configured twice", spec.Name)}
		}
		f, err := spec.factory(r)
		if err != nil {
			set.Close()
			return nil, err
		}
		sink, err := f(ctx, spec.Name, deps)
		if err != nil {
			set.Close()
			return nil, fmt.Errorf("start sink %q (%s): %w", spec.Name, spec.Type, err)
		}
		set.byName[spec.Name] = &Configured{Spec: spec, Sink: sink}
		set.order = append(set.order, spec.Name)
		set.specs = append(set.specs, spec)
	}
	return set, nil
}

// Specs lists the sinks' decoded specs in configuration order.
func (s *Set) Specs() []Spec { return slices.Clone(s.specs) }

// Names lists the sinks in configuration order.
func (s *Set) Names() []string { return slices.Clone(s.order) }

// Get returns a configured sink by name.
func (s *Set) Get(name string) (*Configured, bool) {
	c, ok := s.byName[name]
	return c, ok
}

// Close closes every sink and returns the errors joined.
func (s *Set) Close() error {
	var errs []error
	for _, name := range s.order {
		if err := s.byName[name].Sink.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close sink %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
