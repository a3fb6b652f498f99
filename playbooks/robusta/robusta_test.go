package robusta

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/fixtures"
	"github.com/medichq/medic/internal/plugins" // the plugins, and the validation of their configuration
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/sinks"
)

// shipped is every trigger, action and sink medic ships.
var shipped = plugins.Builtin()

// testOptions are the options of medic as it ships.
func testOptions() Options { return Options{Plugins: shipped.Playbooks(), Sinks: shipped.Sinks} }

// goldenOptions fix what medic offers, so that triggers, actions and sinks
// added elsewhere do not change the golden files.
func goldenOptions(builtin bool) Options {
	return Options{
		Plugins:    shipped.Playbooks(),
		Sinks:      shipped.Sinks,
		Builtin:    builtin,
		HasTrigger: func(n string) bool { return n == "on_prometheus_alert" },
		HasAction: func(n string) bool {
			return slices.Contains([]string{"create_finding", "default_enricher", "template_enricher"}, n)
		},
		SinkTypes:        []string{"file", "stdout"},
		BuiltinPlaybooks: []string{"builtin-alert-enricher"},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testkit.Golden(t, filepath.Join("testdata", name), got)
}

// loads checks that the output is what medic accepts, as `medic playbooks
// validate --config sinks.yaml playbooks.yaml` does: the playbooks (with
// medic's built-in ones) load against the converted sinks and disabled
// list. It returns the set and the sinks.
func loads(t *testing.T, res *Result) (*playbooks.Set, []sinks.Spec) {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "sinks.yaml")
	if err := os.WriteFile(cfgPath, res.Config, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil, shipped.ValidateConfig)
	if err != nil {
		t.Fatalf("the sink configuration does not load: %v\n%s", err, res.Config)
	}
	var known []string
	for _, s := range cfg.Sinks {
		known = append(known, s.Name)
	}
	builtin, err := playbooks.BuiltinFiles()
	if err != nil {
		t.Fatal(err)
	}
	files := append(builtin, playbooks.File{Path: "playbooks.yaml", Data: res.Playbooks})
	opts := playbooks.Options{Plugins: shipped.Playbooks(), Disabled: cfg.Playbooks.Disabled, KnownSinks: known, Remediation: actions.PolicyFrom(cfg.Remediation)}
	if len(res.Remediations) > 0 {
		// The import only suggests the remediation block: as generated,
		// medic stays read-only and those playbooks do not load.
		if cfg.Remediation.Enabled {
			t.Errorf("the generated configuration enables remediation; the operator must opt in:\n%s", res.Config)
		}
		if _, err := playbooks.Build(files, opts); err == nil {
			t.Errorf("playbooks naming %v load without remediation enabled", res.Remediations)
		}
		suggested := "#     allowed: [" + strings.Join(res.Remediations, ", ") + "]\n"
		for what, out := range map[string][]byte{"sinks.yaml": res.Config, "values.yaml": res.HelmValues} {
			if !strings.Contains(string(out), suggested) {
				t.Errorf("%s does not suggest %q:\n%s", what, suggested, out)
			}
		}
		// With the policy the report asks for, they do.
		opts.Remediation = actions.Remediation{Enabled: true, Allowed: res.Remediations, RequireApproval: true}
	}
	set, err := playbooks.Build(files, opts)
	if err != nil {
		t.Fatalf("the converted playbooks do not load: %v\n%s", err, res.Playbooks)
	}
	specs, err := shipped.Sinks.FromConfigs(cfg.Sinks)
	if err != nil {
		t.Fatal(err)
	}
	return set, specs
}

// outputs are every output of a conversion as text, by name, to grep for
// secrets.
func outputs(t *testing.T, res *Result) map[string]string {
	t.Helper()
	rep, err := json.Marshal(res.JSON(nil))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"playbooks.yaml": string(res.Playbooks), "sinks.yaml": string(res.Config), "values.yaml": string(res.HelmValues),
		"report": res.Report(), "json report": string(rep),
	}
}

// The importer checks what it converts against medic's registries, which
// it is handed: without them it says so instead of judging against none.
func TestConvertNeedsTheRegistries(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]Options{
		"none":        {},
		"no sinks":    {Plugins: shipped.Playbooks()},
		"no triggers": {Plugins: playbooks.Plugins{Actions: shipped.Actions}, Sinks: shipped.Sinks},
		"no actions":  {Plugins: playbooks.Plugins{Triggers: shipped.Triggers}, Sinks: shipped.Sinks},
	} {
		if _, err := Convert([]byte("customPlaybooks: []\n"), "values.yaml", opts); err == nil || !strings.Contains(err.Error(), "Plugins.Triggers, Plugins.Actions and Sinks are required") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Convert([]byte("customPlaybooks: []\n"), "values.yaml", testOptions()); err != nil {
		t.Errorf("with medic's registries: %v", err)
	}
}

func TestImportCustomValues(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "custom-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(data, "custom-values.yaml", goldenOptions(false))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "custom.report.golden", []byte(res.Report()))
	golden(t, "custom.playbooks.golden.yaml", res.Playbooks)
	golden(t, "custom.sinks.golden.yaml", res.Config)
	golden(t, "custom.values.golden.yaml", res.HelmValues)
	loads(t, res)
	// The example message.
	if !strings.Contains(res.Report(), "customPlaybooks[2] (bash on nodes): action `node_bash_enricher`: medic lacks `node_bash_enricher`") {
		t.Errorf("report lacks the node_bash_enricher line:\n%s", res.Report())
	}
}

// TestImportSharedRobustaValues converts Robusta's own values file (the
// chart's defaults: its built-in playbooks, no custom ones).
func TestImportSharedRobustaValues(t *testing.T) {
	data := fixtures.Read(t, "robusta", "values.yaml")
	res, err := Convert(data, "values.yaml", goldenOptions(false))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Items); n != 0 {
		t.Errorf("the chart's defaults have no custom playbooks or sinks: %d items\n%s", n, res.Report())
	}
	loads(t, res)

	res, err = Convert(data, "values.yaml", goldenOptions(true))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "shared.report.golden", []byte(res.Report()))
	golden(t, "shared.playbooks.golden.yaml", res.Playbooks)
	loads(t, res)
	if conv, not := res.Count(KindPlaybook, Converted)+res.Count(KindPlaybook, Lossy), res.Count(KindPlaybook, NotConverted); conv == 0 || not == 0 {
		t.Errorf("converted %d, did not convert %d built-in playbooks", conv, not)
	}
}

func TestConvertTemplate(t *testing.T) {
	for in, want := range map[string]string{
		"Job $name on namespace $namespace failed":  "Job {{ .Subject.Name }} on namespace {{ .Subject.Namespace }} failed",
		"${kind} $labels.team $annotations.summary": `{{ .Subject.Kind }} {{ index .Labels "team" }} {{ index .Annotations "summary" }}`,
		"costs $$5, $alertname":                     `costs $5, {{ index .Labels "alertname" }}`,
		"no variables":                              "no variables",
	} {
		if got := convertTemplate(in); got != want {
			t.Errorf("convertTemplate(%q) = %q, want %q", in, got, want)
		}
	}
}
