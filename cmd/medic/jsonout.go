package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// writeJSON is the one way the CLI prints JSON: indented, one document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// jsonError is what a --json command prints on stdout when it fails.
type jsonError struct {
	Error string `json:"error"`
}

// addJSONFlag registers --json on cmd and makes a failure print
// {"error": "…"} on stdout when it is set, so a script reading stdout always
// gets JSON; the error still goes to stderr for people. Commands whose own
// report already said what failed (exitError) print nothing more.
func addJSONFlag(cmd *cobra.Command, asJSON *bool, usage string) {
	cmd.Flags().BoolVar(asJSON, "json", false, usage)
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		err := run(c, args)
		var exit exitError
		if err != nil && *asJSON && !errors.As(err, &exit) {
			if werr := writeJSON(c.OutOrStdout(), jsonError{Error: err.Error()}); werr != nil {
				return errors.Join(err, werr)
			}
		}
		return err
	}
}
