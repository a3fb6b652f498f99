package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/plugins"
	"github.com/medichq/medic/playbooks"
)

func newPlaybooksCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "playbooks",
		Short: "Validate and inspect playbooks",
	}
	cmd.AddCommand(newPlaybooksValidateCmd(), newPlaybooksListCmd())
	cmd.AddCommand(newPlaybooksTestCmd(), newPlaybooksSchemaCmd(), newPlaybooksImportRobustaCmd())
	return cmd
}

type playbookFlags struct {
	config    string
	noBuiltin bool
}

func (f *playbookFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "medic configuration whose sinks and disabled playbooks to check against")
	cmd.Flags().BoolVar(&f.noBuiltin, "no-builtin", false, "leave out the built-in playbooks")
}

// playbookPlugins are the registries the playbook commands build from:
// what this binary ships, as medic serve loads it.
func playbookPlugins() playbooks.Plugins {
	return playbooks.Plugins{Actions: plugins.Builtin().Actions}
}

// load builds the set from paths (default: the configured folders). The
// configuration is optional: without one, sink names are not checked.
func (f *playbookFlags) load(paths []string) (*playbooks.Set, []string, error) {
	opts := playbooks.Options{Plugins: playbookPlugins()}
	cfg := config.Default()
	if path := configPath(f.config); path != "" {
		var err error
		cfg, err = config.Load(path, os.Environ(), plugins.ValidateConfig)
		if err != nil {
			return nil, nil, err
		}
		opts.Disabled = cfg.Playbooks.Disabled
		opts.Remediation = actions.PolicyFrom(cfg.Remediation)
		for _, s := range cfg.Sinks {
			opts.KnownSinks = append(opts.KnownSinks, s.Name)
		}
	}
	configured := len(paths) == 0
	if configured {
		paths = cfg.Playbooks.Dirs
	}
	var files []playbooks.File
	if !f.noBuiltin {
		b, err := playbooks.BuiltinFiles()
		if err != nil {
			return nil, nil, err
		}
		files = b
	}
	var read []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if configured && errors.Is(err, fs.ErrNotExist) {
			continue // as medic serve does: the default ./playbooks may be absent
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read playbooks: %w", err)
		}
		if !st.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, nil, fmt.Errorf("read playbooks: %w", err)
			}
			files = append(files, playbooks.File{Path: p, Data: data})
			read = append(read, p)
			continue
		}
		fs, err := playbooks.ReadDir(p)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range fs {
			read = append(read, f.Path)
		}
		files = append(files, fs...)
	}
	set, err := playbooks.Build(files, opts)
	return set, read, err
}

func newPlaybooksValidateCmd() *cobra.Command {
	var flags playbookFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate [PATH ...]",
		Short: "Check playbook files; exit 1 with file:line errors when any is invalid",
		Long: `Check playbook files or folders the way medic serve would load them: YAML,
known triggers, actions and parameters, unique names, and, with --config, that
every sink a playbook names is configured. Meant for a playbook repository's CI.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			set, files, err := flags.load(args)
			out := cmd.OutOrStdout()
			var perrs playbooks.Errors
			if err != nil && !errors.As(err, &perrs) {
				return err
			}
			if asJSON {
				return writeValidateJSON(out, set, files, perrs)
			}
			if len(perrs) > 0 {
				for _, e := range perrs {
					fmt.Fprintln(out, e.Error())
				}
				fmt.Fprintf(out, "\n%d error(s) in %s\n", len(perrs), plural(len(files), "file"))
				return exitError{code: 1}
			}
			fmt.Fprintf(out, "ok: %s in %s (version %s)\n", plural(len(set.Playbooks), "playbook"), plural(len(files), "file"), set.Version)
			return nil
		},
	}
	flags.register(cmd)
	addJSONFlag(cmd, &asJSON, "print the result as JSON")
	return cmd
}

func writeValidateJSON(w io.Writer, set *playbooks.Set, files []string, errs playbooks.Errors) error {
	type jsonErr struct {
		File    string `json:"file"`
		Line    int    `json:"line,omitempty"`
		Message string `json:"message"`
	}
	out := struct {
		Valid     bool      `json:"valid"`
		Files     []string  `json:"files"`
		Playbooks []string  `json:"playbooks,omitempty"`
		Version   string    `json:"version,omitempty"`
		Errors    []jsonErr `json:"errors,omitempty"`
	}{Valid: len(errs) == 0, Files: files}
	if out.Files == nil {
		out.Files = []string{}
	}
	if set != nil {
		out.Playbooks, out.Version = set.Names(), set.Version
	}
	for _, e := range errs {
		out.Errors = append(out.Errors, jsonErr{File: e.File, Line: e.Line, Message: e.Msg})
	}
	if err := writeJSON(w, out); err != nil {
		return err
	}
	if !out.Valid {
		return exitError{code: 1}
	}
	return nil
}

// playbookEntry is one playbook of `medic playbooks list --json`.
type playbookEntry struct {
	Name     string   `json:"name"`
	Triggers []string `json:"triggers"`
	Actions  []string `json:"actions"`
	Sinks    []string `json:"sinks"` // empty: the default sinks
	Stop     bool     `json:"stop"`
	Location string   `json:"location"`
}

func newPlaybooksListCmd() *cobra.Command {
	var flags playbookFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [PATH ...]",
		Short: "List playbooks in the order they run, with triggers, actions and sinks",
		RunE: func(cmd *cobra.Command, args []string) error {
			set, _, err := flags.load(args)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), playbookEntries(set))
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTRIGGERS\tACTIONS\tSINKS\tSTOP\tWHERE")
			for _, p := range set.Playbooks {
				var trig, acts []string
				for _, t := range p.Triggers {
					trig = append(trig, t.Name)
				}
				for _, a := range p.Actions {
					acts = append(acts, a.Name)
				}
				sinks := strings.Join(p.Sinks, ",")
				if sinks == "" {
					sinks = "(default)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\n", p.Name, strings.Join(trig, ","), strings.Join(acts, ","), sinks, p.Stop, p.Location())
			}
			return tw.Flush()
		},
	}
	flags.register(cmd)
	addJSONFlag(cmd, &asJSON, "print a JSON array of playbooks")
	return cmd
}

func playbookEntries(set *playbooks.Set) []playbookEntry {
	out := make([]playbookEntry, 0, len(set.Playbooks))
	for _, p := range set.Playbooks {
		e := playbookEntry{Name: p.Name, Triggers: []string{}, Actions: []string{}, Sinks: p.Sinks, Stop: p.Stop, Location: p.Location()}
		for _, t := range p.Triggers {
			e.Triggers = append(e.Triggers, t.Name)
		}
		for _, a := range p.Actions {
			e.Actions = append(e.Actions, a.Name)
		}
		if e.Sinks == nil {
			e.Sinks = []string{}
		}
		out = append(out, e)
	}
	return out
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
