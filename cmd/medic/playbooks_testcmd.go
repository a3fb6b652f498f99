package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/playbooks/playtest"
	"github.com/medichq/medic/sinks"
)

func newPlaybooksTestCmd() *cobra.Command {
	var (
		flags     playbookFlags
		eventFile string
		asJSON    bool
		verbose   bool
	)
	cmd := &cobra.Command{
		Use:   "test [PATH ...] [--event FILE]",
		Short: "Show what an event would trigger, or check the playbook test fixtures (tests/*.yaml)",
		Long: `Without running any action, show which playbooks an event matches, which actions
they would run and which sinks would receive the finding (after routing; with
--config, the configured sinks and their scopes, otherwise the default sinks).

  medic playbooks test ./playbooks --event alert.json

The event file is an Alertmanager webhook message (each alert is one event), a
Kubernetes object as kubectl get -o yaml prints it (a Pod, Job, Node or
core/v1 Event, or a List: medic's Kubernetes detector turns it into the events
it would publish for the playbooks' triggers, with fire_delay and duration
taken as elapsed), or a medic event ({kind: pod_crash_loop, subject: {...},
labels: {...}}), in JSON or YAML.

Without --event, every fixture in a folder named tests under PATH is checked
and the command exits 1 when one fails: the unit tests of a playbook
repository. A fixture:

  name: a crash-looping pod in prod pages on-call
  alert: {labels: {alertname: KubePodCrashLooping, namespace: prod-shop, pod: cart-1}}
  # or event: events/crashloop.json   (relative to the fixture), or inline
  expect:
    playbooks: [crashloop]      # in run order; [] expects no match
    actions: [create_finding, template_enricher]
    sinks: [oncall]`,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			set, files, err := flags.load(args)
			var perrs playbooks.Errors
			if errors.As(err, &perrs) {
				for _, e := range perrs {
					fmt.Fprintln(out, e.Error())
				}
				fmt.Fprintf(out, "\n%d error(s) in %s; fix them first (medic playbooks validate)\n", len(perrs), plural(len(files), "file"))
				return exitError{code: 1}
			}
			if err != nil {
				return err
			}
			specs, err := flags.sinkSpecs()
			if err != nil {
				return err
			}
			if eventFile != "" {
				return runEventFile(out, set, specs, eventFile, asJSON)
			}
			paths := args
			if len(paths) == 0 {
				paths, err = flags.defaultDirs()
				if err != nil {
					return err
				}
			}
			return runFixtures(out, set, specs, paths, asJSON, verbose)
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVarP(&eventFile, "event", "e", "", "event file: an Alertmanager webhook message, a Kubernetes object or a medic event (JSON or YAML)")
	addJSONFlag(cmd, &asJSON, "print the result as JSON")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "with fixtures, show what each event matched even when it passed")
	return cmd
}

// sinkSpecs are the sinks to route with: the configuration's, or the
// default sinks.
func (f *playbookFlags) sinkSpecs() ([]sinks.Spec, error) {
	specs, err := config.DefaultSinks(config.Default().DataDir)
	if path := configPath(f.config); path != "" {
		var cfg config.Config
		cfg, err = config.Load(path, os.Environ(), shipped().ValidateConfig)
		specs = cfg.Sinks
	}
	if err != nil {
		return nil, err
	}
	return shipped().Sinks.FromConfigs(specs)
}

// defaultDirs are the configured playbook folders (default ./playbooks).
func (f *playbookFlags) defaultDirs() ([]string, error) {
	if path := configPath(f.config); path != "" {
		cfg, err := config.Load(path, os.Environ(), shipped().ValidateConfig)
		if err != nil {
			return nil, err
		}
		return cfg.Playbooks.Dirs, nil
	}
	return config.Default().Playbooks.Dirs, nil
}

func runEventFile(out io.Writer, set *playbooks.Set, specs []sinks.Spec, path string, asJSON bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := &playtest.Decoder{Set: set}
	events, err := dec.Decode(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	reports := make([]playtest.Report, len(events))
	for i := range events {
		reports[i] = playtest.Run(set, &events[i], specs)
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"version": set.Version, "events": reports})
	}
	fmt.Fprintf(out, "playbook set %s; no action is run\n", set.Version)
	if dec.Objects > 0 {
		fmt.Fprintf(out, "%s, as the events medic's Kubernetes triggers would publish (fire_delay and duration taken as elapsed)\n",
			plural(dec.Objects, "Kubernetes object"))
		if len(reports) == 0 {
			fmt.Fprintln(out, "\nno event: the Kubernetes triggers of this playbook set report nothing for it, so no playbook runs")
		}
	}
	fmt.Fprintln(out)
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(out)
		}
		fmt.Fprint(out, r.Text())
	}
	return nil
}

func runFixtures(out io.Writer, set *playbooks.Set, specs []sinks.Spec, paths []string, asJSON, verbose bool) error {
	files, err := playtest.FindFixtures(paths)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fmt.Fprintf(out, "no fixtures: put them in a folder named %s beside the playbooks (in %s), or give --event FILE\n",
			playbooks.FixtureDir, strings.Join(paths, ", "))
		return exitError{code: 1}
	}
	var results []playtest.Result
	var loadErrs []string
	for _, f := range files {
		fixtures, err := playtest.LoadFixtures(f, set)
		if err != nil {
			loadErrs = append(loadErrs, err.Error())
			continue
		}
		for _, fx := range fixtures {
			results = append(results, playtest.Check(set, specs, fx))
		}
	}
	failed := len(loadErrs)
	for _, r := range results {
		if !r.Passed() {
			failed++
		}
	}
	if asJSON {
		type jsonResult struct {
			Name     string            `json:"name"`
			Location string            `json:"location"`
			Passed   bool              `json:"passed"`
			Diffs    []string          `json:"diffs,omitempty"`
			Reports  []playtest.Report `json:"reports"`
		}
		doc := struct {
			Version string       `json:"version"`
			Passed  int          `json:"passed"`
			Failed  int          `json:"failed"`
			Errors  []string     `json:"errors,omitempty"`
			Results []jsonResult `json:"fixtures"`
		}{Version: set.Version, Failed: failed, Errors: loadErrs, Results: []jsonResult{}}
		for _, r := range results {
			doc.Results = append(doc.Results, jsonResult{Name: r.Fixture.Name, Location: r.Fixture.Location(), Passed: r.Passed(), Diffs: r.Diffs, Reports: r.Reports})
			if r.Passed() {
				doc.Passed++
			}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			return err
		}
	} else {
		for _, e := range loadErrs {
			fmt.Fprintf(out, "ERROR %s\n", e)
		}
		for _, r := range results {
			state := "PASS"
			if !r.Passed() {
				state = "FAIL"
			}
			fmt.Fprintf(out, "%s  %s  (%s)\n", state, r.Fixture.Name, r.Fixture.Location())
			for _, d := range r.Diffs {
				fmt.Fprintf(out, "        %s\n", d)
			}
			if verbose || !r.Passed() {
				for _, rep := range r.Reports {
					for _, line := range strings.Split(strings.TrimRight(rep.Text(), "\n"), "\n") {
						fmt.Fprintf(out, "      %s\n", line)
					}
				}
			}
		}
		fmt.Fprintf(out, "\n%s: %d passed, %d failed (playbook set %s)\n", plural(len(results)+len(loadErrs), "fixture"), len(results)+len(loadErrs)-failed, failed, set.Version)
	}
	if failed > 0 {
		return exitError{code: 1}
	}
	return nil
}
