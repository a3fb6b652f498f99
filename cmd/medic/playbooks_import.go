package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/medichq/medic/playbooks/robusta"
)

func newPlaybooksImportRobustaCmd() *cobra.Command {
	var (
		outDir  string
		builtin bool
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "import-robusta VALUES.yaml --out DIR",
		Short: "Convert a Robusta Helm values file to medic playbooks and sinks",
		Long: `Convert the customPlaybooks, namedCustomPlaybooks, sinksConfig and
disabledPlaybooks of a Robusta Helm values file into DIR/playbooks.yaml (medic
playbooks) and DIR/sinks.yaml (a medic.yaml fragment: sinks and
playbooks.disabled), and report everything that could not be converted, and
why. With --builtin, Robusta's own built-in playbook lists are converted too.

  medic playbooks import-robusta values.yaml --out converted/
  medic playbooks validate --config converted/sinks.yaml converted/playbooks.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if outDir == "" {
				return fmt.Errorf("--out DIR is required")
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			res, err := robusta.Convert(data, filepath.Base(args[0]), robusta.Options{Builtin: builtin})
			if err != nil {
				return err
			}
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return err
			}
			pbPath, cfgPath := filepath.Join(outDir, "playbooks.yaml"), filepath.Join(outDir, "sinks.yaml")
			if err := os.WriteFile(pbPath, res.Playbooks, 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(cfgPath, res.Config, 0o600); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, importReport(res, pbPath, cfgPath))
			}
			fmt.Fprint(out, res.Report())
			fmt.Fprintf(out, "\nwrote %s and %s\n", pbPath, cfgPath)
			return nil
		},
	}
	cmd.Flags().StringVarP(&outDir, "out", "o", "", "folder for playbooks.yaml and sinks.yaml (created)")
	cmd.Flags().BoolVar(&builtin, "builtin", false, "also convert Robusta's builtinPlaybooks and priorityBuiltinPlaybooks (and platformPlaybooks when enabled)")
	addJSONFlag(cmd, &asJSON, "print the report (counts, what was not converted or changed, files written) as JSON")
	return cmd
}

// importJSON is `medic playbooks import-robusta --json`.
type importJSON struct {
	PlaybooksSeen      int             `json:"playbooks_seen"`
	PlaybooksConverted int             `json:"playbooks_converted"`
	SinksSeen          int             `json:"sinks_seen"`
	SinksConverted     int             `json:"sinks_converted"`
	NotConverted       []robusta.Issue `json:"not_converted"`
	Changed            []robusta.Issue `json:"changed"`
	Wrote              []string        `json:"wrote"`
}

func importReport(res *robusta.Result, files ...string) importJSON {
	r := importJSON{
		PlaybooksSeen: res.PlaybooksSeen, PlaybooksConverted: res.PlaybooksConverted,
		SinksSeen: res.SinksSeen, SinksConverted: res.SinksConverted,
		NotConverted: res.NotConverted, Changed: res.Changed, Wrote: files,
	}
	if r.NotConverted == nil {
		r.NotConverted = []robusta.Issue{}
	}
	if r.Changed == nil {
		r.Changed = []robusta.Issue{}
	}
	return r
}
