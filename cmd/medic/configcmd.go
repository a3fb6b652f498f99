package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/medichq/medic/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check medic's configuration",
	}
	cmd.AddCommand(newConfigCheckCmd())
	return cmd
}

func newConfigCheckCmd() *cobra.Command {
	var asJSON bool
	var configFlag string
	cmd := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Check a configuration file; list every problem as FILE:LINE:COLUMN: field: reason",
		Long: `Check a configuration file the way medic serve would load it (with the MEDIC_*
environment variables applied) and list every problem at once: YAML syntax (a tab
in the indentation is named as such), unknown keys with the closest known key,
values of the wrong type, and the first invalid value Validate finds.

FILE defaults to the file medic serve would use: --config, else $MEDIC_CONFIG, else
./medic.yaml.
Exit status 1 when there is any problem.`,
		Example: `  medic config check
  medic config check deploy/medic.yaml --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := configPath(configFlag)
			if len(args) == 1 {
				path = args[0]
			}
			probs := config.Check(path, os.Environ(), shipped().ValidateConfig)
			out := cmd.OutOrStdout()
			if asJSON {
				return writeConfigProblemsJSON(out, probs)
			}
			for _, p := range probs {
				fmt.Fprintln(out, p.String())
			}
			if len(probs) > 0 {
				fmt.Fprintf(out, "\n%s\n", plural(len(probs), "problem"))
				return exitError{code: 1}
			}
			if path == "" {
				fmt.Fprintln(out, "ok: no configuration file ($MEDIC_CONFIG unset, no ./medic.yaml); medic serve uses the built-in defaults")
				return nil
			}
			fmt.Fprintf(out, "ok: %s\n", path)
			return nil
		},
	}
	cmd.Flags().StringVarP(&configFlag, "config", "c", "", "configuration file, as for medic serve (FILE wins)")
	addJSONFlag(cmd, &asJSON, "print a JSON array of problems (file, line, column, field, message, suggestion)")
	return cmd
}

func writeConfigProblemsJSON(w io.Writer, probs []config.Problem) error {
	if probs == nil {
		probs = []config.Problem{}
	}
	if err := writeJSON(w, probs); err != nil {
		return err
	}
	if len(probs) > 0 {
		return exitError{code: 1}
	}
	return nil
}
