package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/medichq/medic/playbooks/robusta"
)

// exitImportLossy is import-robusta's exit status when some item was
// converted with loss or not converted (the files are still written).
const exitImportLossy = 3

func newPlaybooksImportRobustaCmd() *cobra.Command {
	var (
		outDir  string
		builtin bool
		asJSON  bool
		format  string
	)
	cmd := &cobra.Command{
		Use:   "import-robusta VALUES.yaml --out DIR",
		Short: "Convert a Robusta Helm values file to medic playbooks and sinks, reporting every item",
		Long: `Convert the customPlaybooks, namedCustomPlaybooks, sinksConfig and
disabledPlaybooks of a Robusta Helm values file into
  DIR/playbooks.yaml  medic playbooks,
  DIR/sinks.yaml      a medic.yaml fragment (sinks, playbooks.disabled),
  DIR/values.yaml     values for medic's Helm chart (sinksConfig with secrets as
                      secretKeyRef, customPlaybooks, disabledPlaybooks, slack.botToken),
and report every input item (playbook, trigger, action, sink, sink parameter,
disabled playbook) as converted, converted with loss (what was lost, why) or
not converted (why, and what to do). Nothing is widened silently: a trigger
condition, a silencer or a sink scope medic cannot keep makes its playbook or
sink "not converted". Secrets are never copied: they become references to the
Secret medic-sinks, whose keys the report lists.

Files are rewritten only when their content changes, so a re-run is
idempotent. Exit status: 0 when everything was converted without loss, 3 when
something was converted with loss or not converted, 1 on error. With --builtin,
Robusta's own built-in playbook lists are converted too.

  medic playbooks import-robusta values.yaml --out converted/
  medic playbooks import-robusta values.yaml --out converted/ --report json
  medic playbooks validate --config converted/sinks.yaml converted/playbooks.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if outDir == "" {
				return errors.New("--out DIR is required")
			}
			switch {
			case asJSON:
				format = "json"
			case format == "json":
				asJSON = true // errors are printed as JSON too (addJSONFlag)
			}
			if format != "text" && format != "json" {
				return fmt.Errorf("--report: %q is not text or json", format)
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read the Robusta values: %w", err)
			}
			res, err := robusta.Convert(data, filepath.Base(args[0]), robusta.Options{Builtin: builtin, Plugins: playbookPlugins()})
			if err != nil {
				return err
			}
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return fmt.Errorf("create the output folder: %w", err)
			}
			var files []robusta.File
			for _, f := range []struct {
				name string
				data []byte
				mode fs.FileMode
			}{
				{"playbooks.yaml", res.Playbooks, 0o644},
				{"sinks.yaml", res.Config, 0o644},
				{"values.yaml", res.HelmValues, 0o644},
			} {
				path := filepath.Join(outDir, f.name)
				status, err := writeIfChanged(path, f.data, f.mode)
				if err != nil {
					return err
				}
				files = append(files, robusta.File{Path: path, Status: status})
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				if err := writeJSON(out, res.JSON(files)); err != nil {
					return err
				}
			} else {
				fmt.Fprint(out, res.Report())
				fmt.Fprintln(out)
				for _, f := range files {
					fmt.Fprintf(out, "%s %s\n", f.Status, f.Path)
				}
			}
			if !res.Lossless() {
				return exitError{code: exitImportLossy}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&outDir, "out", "o", "", "folder for playbooks.yaml, sinks.yaml and values.yaml (created)")
	cmd.Flags().BoolVar(&builtin, "builtin", false, "also convert Robusta's builtinPlaybooks and priorityBuiltinPlaybooks (and platformPlaybooks when enabled)")
	cmd.Flags().StringVar(&format, "report", "text", "report format: text (a table and the items that lost something) or json (every item; schema "+robusta.ReportSchema+")")
	addJSONFlag(cmd, &asJSON, "same as --report json")
	return cmd
}

// writeIfChanged writes data to path unless it already holds it, and says
// which: created, updated or unchanged.
func writeIfChanged(path string, data []byte, mode fs.FileMode) (string, error) {
	old, err := os.ReadFile(path)
	status := "updated"
	switch {
	case errors.Is(err, fs.ErrNotExist):
		status = "created"
	case err != nil:
		return "", fmt.Errorf("read %s: %w", path, err)
	case bytes.Equal(old, data):
		return "unchanged", nil
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return status, nil
}
