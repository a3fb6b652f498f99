package repocheck

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/plugins" // the plugins, and the validation of their configuration
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/playbooks/playtest"
	"github.com/medichq/medic/test/deploy"
	"github.com/medichq/medic/test/realam"
	"github.com/medichq/medic/test/toolbin"
)

// What a snippet configures, told from its content rather than its fence's
// info string (most are tagged yaml, which says nothing about the program).
const (
	kindNone          = ""                             // a command, a diagram, program output: not configuration
	kindAlertmanager  = "Alertmanager config"          // route:, receivers:
	kindKubePromStack = "kube-prometheus-stack values" // alertmanager: {config:, alertmanagerSpec:}
	kindRules         = "Prometheus rules"             // groups: [{rules: …}]
	kindChartValues   = "medic chart values"           // top-level keys of deploy/helm/medic/values.yaml
	kindMedicConfig   = "medic config"                 // top-level keys of config.Config
	kindPlaybooks     = "playbooks"                    // a list of {name, triggers, actions}
	kindPlaybookTests = "playbook fixtures"            // a list of {name, expect}
)

// nonConfigInfo are fence languages that are never configuration.
var nonConfigInfo = map[string]bool{"sh": true, "bash": true, "console": true, "shell": true, "python": true, "go": true, "json": true, "text": true}

// keysOf returns the top-level keys of a YAML mapping.
func keysOf(n *yaml.Node) []string {
	var keys []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
	}
	return keys
}

func value(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// medicKeys are the top-level keys medic.yaml may have, from config.Config's
// yaml tags.
func medicKeys() map[string]bool {
	keys := map[string]bool{}
	typ := reflect.TypeOf(config.Config{})
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			keys[name] = true
		}
	}
	return keys
}

// chartKeys are the top-level keys of the chart's values.yaml.
func chartKeys(t *testing.T) map[string]bool {
	t.Helper()
	chart, err := deploy.ChartDir()
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(must(os.ReadFile(filepath.Join(chart, "values.yaml"))), &doc); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, k := range keysOf(doc.Content[0]) {
		keys[k] = true
	}
	return keys
}

func subset(keys []string, of map[string]bool) bool {
	for _, k := range keys {
		if !of[k] {
			return false
		}
	}
	return len(keys) > 0
}

// classify tells what a snippet configures. A snippet tagged yaml that is
// not valid YAML, or valid YAML that is none of the known kinds, is an
// error: it would otherwise go unchecked without anyone deciding so.
func classify(s Snippet, medic, chart map[string]bool) (string, error) {
	if nonConfigInfo[s.Info] {
		return kindNone, nil
	}
	tagged := s.Info == "yaml" || s.Info == "yml"
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s.Text), &doc); err != nil {
		if tagged {
			return "", fmt.Errorf("invalid YAML: %v", err)
		}
		return kindNone, nil
	}
	if len(doc.Content) == 0 {
		return kindNone, nil
	}
	root := doc.Content[0]
	switch root.Kind {
	case yaml.MappingNode:
		keys := keysOf(root)
		am := value(root, "alertmanager")
		switch {
		case value(root, "route") != nil || value(root, "receivers") != nil:
			return kindAlertmanager, nil
		case value(root, "groups") != nil:
			return kindRules, nil
		case am != nil && am.Kind == yaml.MappingNode && (value(am, "config") != nil || value(am, "alertmanagerSpec") != nil):
			return kindKubePromStack, nil
		case subset(keys, medic):
			return kindMedicConfig, nil
		case subset(keys, chart):
			return kindChartValues, nil
		}
		return "", fmt.Errorf("keys %v are neither medic.yaml's nor the chart's values", keys)
	case yaml.SequenceNode:
		if len(root.Content) > 0 && root.Content[0].Kind == yaml.MappingNode {
			item := root.Content[0]
			switch {
			case value(item, "triggers") != nil:
				return kindPlaybooks, nil
			case value(item, "expect") != nil:
				return kindPlaybookTests, nil
			}
		}
		return "", fmt.Errorf("a YAML list that is neither playbooks nor playbook fixtures")
	}
	if tagged {
		return "", fmt.Errorf("a YAML scalar, not configuration")
	}
	return kindNone, nil
}

// docSnippets are the fenced blocks of README.md and docs/*.md.
func docSnippets(t *testing.T) []Snippet {
	t.Helper()
	root := must(toolbin.RepoRoot())
	files := []string{"README.md"}
	docs := must(filepath.Glob(filepath.Join(root, "docs", "*.md")))
	for _, d := range docs {
		files = append(files, filepath.ToSlash(must(filepath.Rel(root, d))))
	}
	var all []Snippet
	for _, f := range files {
		s, err := Extract(f, string(must(os.ReadFile(filepath.Join(root, filepath.FromSlash(f))))))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, s...)
	}
	return all
}

// Every configuration snippet of README.md and docs/*.md passes the
// checker of the program it configures. Subtests are named file:line of
// the snippet's opening fence. A snippet that cannot be checked says why
// in a `<!-- snippet: not-checked (reason) -->` comment before its fence.
func TestDocSnippets(t *testing.T) {
	medic, chart := medicKeys(), chartKeys(t)
	checkers := map[string]func(*testing.T, Snippet){
		kindAlertmanager:  checkAlertmanager,
		kindKubePromStack: checkKubePromStack,
		kindRules: func(t *testing.T, s Snippet) {
			// promtool's rulefmt is in github.com/prometheus/prometheus,
			// which medic does not depend on; no doc has rules today.
			t.Skipf("%s: Prometheus rules are not checked (rulefmt is not a dependency of the module)", s)
		},
		kindChartValues:   checkChartValues,
		kindMedicConfig:   checkMedicConfig,
		kindPlaybooks:     checkPlaybooks,
		kindPlaybookTests: checkPlaybookTests,
	}
	counts := map[string]int{}
	for _, s := range docSnippets(t) {
		kind, err := classify(s, medic, chart)
		if reason, ok := s.NotChecked(); ok {
			if reason == "" {
				t.Errorf("%s: a not-checked marker without a reason", s)
			}
			continue
		}
		if s.Marker != "" {
			t.Errorf("%s: unknown snippet marker %q (the one known: not-checked (reason))", s, s.Marker)
		}
		if err != nil {
			t.Errorf("%s: %v (fix it, or mark it <!-- snippet: not-checked (reason) -->)", s, err)
			continue
		}
		if kind == kindNone {
			continue
		}
		counts[kind]++
		t.Run(s.String()+" "+kind, func(t *testing.T) { checkers[kind](t, s) })
	}
	// The detection itself: the README has snippets of these kinds, so a
	// change that stops recognizing them fails here instead of checking
	// nothing.
	for kind, least := range map[string]int{kindAlertmanager: 1, kindKubePromStack: 1, kindChartValues: 1, kindMedicConfig: 5, kindPlaybooks: 2, kindPlaybookTests: 1} {
		if counts[kind] < least {
			t.Errorf("found %d %s snippets, want at least %d", counts[kind], kind, least)
		}
	}
	t.Logf("checked: %v", counts)
}

// needAmtool skips in -short mode when amtool is not built yet (building
// Alertmanager takes a minute or two); otherwise it builds it when missing.
func needAmtool(t *testing.T) string {
	t.Helper()
	if testing.Short() && !realam.Built() {
		t.Skip("amtool is not built (test/tools/build-alertmanager.sh); -short does not build it")
	}
	return must(realam.Amtool())
}

// amtoolCheck runs `amtool check-config` on an Alertmanager configuration.
func amtoolCheck(t *testing.T, s Snippet, cfg []byte) {
	t.Helper()
	amtool := needAmtool(t)
	path := filepath.Join(t.TempDir(), "alertmanager.yml")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(amtool, "check-config", path).CombinedOutput(); err != nil {
		t.Errorf("%s: amtool check-config: %v\n%s\nthe configuration checked:\n%s", s, err, out, cfg)
	}
}

// checkAlertmanager checks an Alertmanager snippet. A fragment that is only
// a receivers list (what you add to your own configuration) is wrapped into
// the smallest complete configuration: a route whose receiver is the
// fragment's first receiver.
func checkAlertmanager(t *testing.T, s Snippet) {
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(s.Text), &cfg); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	if _, ok := cfg["route"]; !ok {
		recv, _ := cfg["receivers"].([]any)
		first, _ := recv[0].(map[string]any)
		cfg["route"] = map[string]any{"receiver": first["name"]}
	}
	amtoolCheck(t, s, must(yaml.Marshal(cfg)))
}

// checkKubePromStack checks the Alertmanager configuration a values file
// gives kube-prometheus-stack: README applies it with `helm upgrade
// --reuse-values -f`, so it is merged (Helm's rules: maps merge, lists and
// scalars replace) over the chart's default alertmanager.config, and the
// merged configuration is checked.
func checkKubePromStack(t *testing.T, s Snippet) {
	var values struct {
		Alertmanager struct {
			Config map[string]any `yaml:"config"`
		} `yaml:"alertmanager"`
	}
	if err := yaml.Unmarshal([]byte(s.Text), &values); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	if values.Alertmanager.Config == nil {
		t.Skipf("%s: sets no alertmanager.config", s)
	}
	var defaults map[string]any
	if err := yaml.Unmarshal(must(os.ReadFile(filepath.Join("testdata", "kube-prometheus-stack-alertmanager-config.yaml"))), &defaults); err != nil {
		t.Fatal(err)
	}
	amtoolCheck(t, s, must(yaml.Marshal(mergeValues(defaults, values.Alertmanager.Config))))
}

// mergeValues merges over onto base as Helm merges values files.
func mergeValues(base, over map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		bm, bok := out[k].(map[string]any)
		om, ook := v.(map[string]any)
		if bok && ook {
			out[k] = mergeValues(bm, om)
		} else {
			out[k] = v
		}
	}
	return out
}

// checkChartValues renders the chart with the snippet as a values file:
// `helm lint --strict`, then `helm template`.
func checkChartValues(t *testing.T, s Snippet) {
	if testing.Short() && !deploy.HelmBuilt() {
		t.Skip("helm is not built (test/tools/build-helm.sh); -short does not build it")
	}
	path := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(path, []byte(s.Text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := deploy.RunHelm("lint", must(deploy.ChartDir()), "--strict", "--values", path)
	if err != nil || strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
		t.Fatalf("%s: helm lint: %v\n%s", s, err, out)
	}
	if _, err := deploy.Template([]string{path}); err != nil {
		t.Fatalf("%s: helm template: %v", s, err)
	}
}

// checkMedicConfig loads the snippet with medic's own loader, which also
// validates it. Load reads every `*_file` (mounted Secrets on the reader's
// machine), so each such path is pointed at a temporary file holding a
// made-up secret first.
func checkMedicConfig(t *testing.T, s Snippet) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s.Text), &doc); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	dir := t.TempDir()
	n := 0
	var walk func(*yaml.Node)
	walk = func(node *yaml.Node) {
		if node.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(node.Content); i += 2 {
				k, v := node.Content[i], node.Content[i+1]
				if strings.HasSuffix(k.Value, "_file") && v.Kind == yaml.ScalarNode && v.Value != "" {
					n++
					p := filepath.Join(dir, fmt.Sprintf("secret-%d", n))
					if err := os.WriteFile(p, []byte("snippet-secret-5f1c0e4b9a7d2c3e8f6a1b0d"), 0o600); err != nil {
						t.Fatal(err)
					}
					v.Value = p
				}
			}
		}
		for _, c := range node.Content {
			walk(c)
		}
	}
	walk(&doc)
	path := filepath.Join(dir, "medic.yaml")
	if err := os.WriteFile(path, must(yaml.Marshal(&doc)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil, plugins.ValidateConfig)
	if err != nil {
		t.Fatalf("%s: %v\n%s", s, err, s.Text)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("%s: loads with warnings: %v", s, cfg.Warnings)
	}
}

// builtinPlugins are the registries of every built-in plugin.
var builtinPlugins = playbooks.Plugins{Actions: plugins.Builtin().Actions}

// checkPlaybooks builds the snippet as a playbook file with every built-in
// trigger and action registered, as `medic playbooks validate` does.
func checkPlaybooks(t *testing.T, s Snippet) {
	// Snippets show what an operator may enable: remediation included.
	opts := playbooks.Options{Plugins: builtinPlugins, Remediation: actions.Remediation{Enabled: true, Allowed: actions.RemediationActions}}
	if _, err := playbooks.Build([]playbooks.File{{Path: s.String(), Data: []byte(s.Text)}}, opts); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
}

// checkPlaybookTests loads the snippet as a `medic playbooks test` fixture
// file against the built-in playbooks.
func checkPlaybookTests(t *testing.T, s Snippet) {
	set, err := playbooks.Build(must(playbooks.BuiltinFiles()), playbooks.Options{Plugins: builtinPlugins})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fixture.yaml")
	if err := os.WriteFile(path, []byte(s.Text), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := playtest.LoadFixtures(path, set); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
}

// must is for the calls that fail only when the checkout is broken (as in
// test/deploy): the panic names the error.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// The extractor on the shapes the docs use: a plain fence, an indented one
// inside a list item, a marker, and an unclosed fence.
func TestExtract(t *testing.T) {
	md := "# t\n\n```yaml\na: 1\n```\n\n1. step\n\n   ```yaml\n   b: 2\n   ```\n\n<!-- snippet: not-checked (a fragment) -->\n```\nc\n```\n"
	got, err := Extract("x.md", md)
	if err != nil {
		t.Fatal(err)
	}
	want := []Snippet{
		{File: "x.md", Line: 3, Info: "yaml", Text: "a: 1\n"},
		{File: "x.md", Line: 9, Info: "yaml", Text: "b: 2\n"},
		{File: "x.md", Line: 14, Text: "c\n", Marker: "not-checked (a fragment)"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Extract:\n got %+v\nwant %+v", got, want)
	}
	if r, ok := got[2].NotChecked(); !ok || r != "a fragment" {
		t.Errorf("NotChecked() = %q, %v", r, ok)
	}
	if _, err := Extract("y.md", "```sh\nls\n"); err == nil || !strings.Contains(err.Error(), "y.md:1") {
		t.Errorf("an unclosed fence: %v", err)
	}
}

// classify on one snippet of each kind.
func TestClassify(t *testing.T) {
	medic := medicKeys()
	chart := map[string]bool{"clusterName": true, "sinksConfig": true, "webhook": true}
	for _, c := range []struct {
		info, text, want string
	}{
		{"sh", "kubectl apply -f x.yaml\n", kindNone},
		{"", "a ──▶ b\n", kindNone},
		{"yaml", "receivers:\n  - name: medic\n", kindAlertmanager},
		{"yaml", "groups:\n  - name: g\n    rules: []\n", kindRules},
		{"yaml", "alertmanager:\n  config: {route: {receiver: x}}\n", kindKubePromStack},
		{"yaml", "alertmanager: {url: http://am:9093}\n", kindMedicConfig},
		{"yaml", "clusterName: x\nsinksConfig: []\n", kindChartValues},
		{"yaml", "- name: p\n  triggers: []\n", kindPlaybooks},
		{"yaml", "- name: f\n  expect: {}\n", kindPlaybookTests},
	} {
		got, err := classify(Snippet{Info: c.info, Text: c.text}, medic, chart)
		if err != nil || got != c.want {
			t.Errorf("classify(%q) = %q, %v; want %q", c.text, got, err, c.want)
		}
	}
	for _, bad := range []string{"nonsense_key: 1\n", "[: broken\n", "- 1\n- 2\n"} {
		if _, err := classify(Snippet{Info: "yaml", Text: bad}, medic, chart); err == nil {
			t.Errorf("classify(%q): no error", bad)
		}
	}
}
