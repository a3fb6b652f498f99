package config

import (
	"fmt"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/params"
)

// SinkSpec is one entry of sinks. Config reads the two keys every sink has,
// name and type, and keeps names unique; the entry as written (its routing
// keys and the type's own parameters) is the sinks registry's to decode and
// judge (sinks.FromConfig), in the second step (Validator).
//
//   - name: oncall-file
//     type: file
//     default: true        # routing keys: see sinks/route.go
//     path: data/findings.jsonl   # every other key is a parameter of the type
type SinkSpec struct {
	Name string
	Type string
	// Node is the entry as written, with its lines and columns, so the
	// registry's errors point into the file.
	Node *yaml.Node
}

// UnmarshalYAML reads name and type and keeps the whole entry; the other
// keys are left to the registry.
func (s *SinkSpec) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.MappingNode {
		return params.Errorf(node, "a sink must be a mapping with name and type")
	}
	var common struct {
		Name string `yaml:"name"`
		Type string `yaml:"type"`
	}
	if err := node.Decode(&common); err != nil {
		return err
	}
	*s = SinkSpec{Name: common.Name, Type: common.Type, Node: node}
	return nil
}

// DefaultSinks are used when the configuration names none.
func DefaultSinks(dataDir string) ([]SinkSpec, error) {
	doc := fmt.Sprintf("- {name: stdout, type: stdout}\n- {name: file, type: file, path: %q}\n",
		filepath.Join(dataDir, "findings.jsonl"))
	var specs []SinkSpec
	if err := yaml.Unmarshal([]byte(doc), &specs); err != nil {
		return nil, fmt.Errorf("build default sinks: %w", err)
	}
	return specs, nil
}

// validateSinks checks that no sink name is used twice; the name's form,
// the type and its parameters are the registry's (sinks.FromConfig).
func (c *Config) validateSinks() error {
	seen := map[string]bool{}
	for i := range c.Sinks {
		s := &c.Sinks[i]
		if seen[s.Name] {
			return fmt.Errorf("sinks[%d]: sink %q is configured twice", i, s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}
