// Package secretparam reads a sink's secret parameter, which the
// configuration gives in one of three keys: inline (`api_key`), from a file
// (`api_key_file`, what the Helm chart mounts from a Secret) or from an
// environment variable (`api_key_env`). Every sink reads its secrets the same
// way, so the chart, the importer and the docs can treat them alike, and no
// error or log line ever carries the value.
package secretparam

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Param is one secret parameter as decoded from the three keys. Embed its
// fields in a sink's parameter struct under the sink's own yaml names and
// build a Param to validate and read them.
type Param struct {
	// Key is the parameter's name ("api_key"); the file and environment
	// keys are Key+"_file" and Key+"_env".
	Key    string
	Inline string
	File   string
	Env    string
}

// Set reports whether any of the three keys is given.
func (p Param) Set() bool { return p.Inline != "" || p.File != "" || p.Env != "" }

// Validate checks that at most one key is given, and one when required.
func (p Param) Validate(required bool) error {
	n := 0
	for _, v := range []string{p.Inline, p.File, p.Env} {
		if v != "" {
			n++
		}
	}
	switch {
	case n > 1:
		return fmt.Errorf("%s, %s_file and %s_env: set only one", p.Key, p.Key, p.Key)
	case n == 0 && required:
		return fmt.Errorf("%s: required (or %s_file, the path of a file holding it, or %s_env, an environment variable holding it)", p.Key, p.Key, p.Key)
	}
	return nil
}

// ErrEmpty is returned when the file or variable holds nothing.
var ErrEmpty = errors.New("is empty")

// Read returns the secret, trimmed of surrounding white space (a file
// written by `echo` or a Secret created with a trailing newline is common).
// It returns "" without error when no key is given.
func (p Param) Read() (string, error) {
	switch {
	case p.File != "":
		b, err := os.ReadFile(p.File)
		if err != nil {
			// The error names the path, never the content.
			return "", fmt.Errorf("%s_file: %w", p.Key, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("%s_file: %s %w", p.Key, p.File, ErrEmpty)
		}
		return v, nil
	case p.Env != "":
		v := strings.TrimSpace(os.Getenv(p.Env))
		if v == "" {
			return "", fmt.Errorf("%s_env: $%s %w", p.Key, p.Env, ErrEmpty)
		}
		return v, nil
	}
	return strings.TrimSpace(p.Inline), nil
}
