package config

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/medichq/medic/redact"
)

// RedactionConfig is what medic removes from every finding before any
// sink renders it or the finding page shows it, and from every prompt
// before it goes to a model (package redact): environment variable
// values, Secret data, the last-applied-configuration annotation, known
// token shapes, passwords in URLs, key=value secrets, and Patterns.
type RedactionConfig struct {
	// Patterns are extra Go regular expressions; when one has a group,
	// only the first group is replaced. ai.redact_patterns adds to them.
	Patterns []string `yaml:"patterns"`
	// EnvAllow names the environment variables whose values stay readable
	// (values of every other variable are redacted).
	EnvAllow []string `yaml:"env_allow"`
}

func defaultRedaction() RedactionConfig {
	return RedactionConfig{EnvAllow: slices.Clone(redact.DefaultEnvAllow)}
}

func (c *Config) validateRedaction() error {
	for i, p := range c.Redaction.Patterns {
		if _, err := regexp.Compile(p); err != nil {
			return fmt.Errorf("redaction.patterns[%d]: %w", i, err)
		}
	}
	return nil
}

// Redactor builds the one redactor the pipeline, the finding page and the
// model path share: redaction.patterns and ai.redact_patterns together.
func (c *Config) Redactor() (*redact.Redactor, error) {
	envAllow := c.Redaction.EnvAllow
	if envAllow == nil {
		envAllow = []string{} // nil would mean the defaults; the operator emptied the list
	}
	r, err := redact.New(redact.Options{
		Patterns: slices.Concat(c.Redaction.Patterns, c.AI.RedactPatterns),
		EnvAllow: envAllow,
	})
	if err != nil {
		return nil, fmt.Errorf("redaction: %w", err)
	}
	return r, nil
}
