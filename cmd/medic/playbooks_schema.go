package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/medichq/medic/playbooks"
)

func newPlaybooksSchemaCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print a JSON Schema of the playbook format, for editors",
		Long: `Print a JSON Schema (draft 2020-12) of playbook files with every trigger and
action of this medic and their parameters. Point your editor at it, e.g. with
VS Code's YAML extension:

  medic playbooks schema --out .medic/playbooks.schema.json
  # first line of a playbook file:
  # yaml-language-server: $schema=../.medic/playbooks.schema.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := playbooks.SchemaJSON(playbookPlugins())
			if err != nil {
				return err
			}
			if out != "" {
				return os.WriteFile(out, data, 0o644)
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the schema to this file instead of stdout")
	return cmd
}
