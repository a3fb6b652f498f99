package robusta

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/plugins"
	"github.com/medichq/medic/test/deploy"
)

// TestHelmValuesRender renders medic's chart with the Helm values the
// importer writes: the secrets are mounted from the Secret medic-sinks at
// the files medic.yaml names, none is in the chart's objects, and the
// rendered medic.yaml loads with the converted sinks and playbooks.
func TestHelmValuesRender(t *testing.T) {
	if testing.Short() && !deploy.HelmBuilt() {
		t.Skip("helm is not built (test/tools/build-helm.sh); -short does not build it")
	}
	data, err := os.ReadFile(filepath.Join("testdata", "helm-robusta-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(data, "helm-robusta-values.yaml", Options{Plugins: testPlugins})
	if err != nil {
		t.Fatal(err)
	}
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, res.HelmValues, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := deploy.Template([]string{values})
	if err != nil {
		t.Fatalf("%v\nvalues:\n%s", err, res.HelmValues)
	}
	if strings.Contains(out, "CANARY") {
		t.Errorf("the rendered chart holds a secret of the values file")
	}
	objs, err := deploy.ParseManifests(out)
	if err != nil {
		t.Fatal(err)
	}
	medicYAML, err := deploy.MedicConfig(objs)
	if err != nil {
		t.Fatal(err)
	}
	if problems := deploy.CheckConfigHasNoInlineSecrets(medicYAML); len(problems) > 0 {
		t.Errorf("inline secrets in medic.yaml: %v", problems)
	}
	var cfg struct {
		ClusterName string `yaml:"cluster_name"`
		Slack       struct {
			BotTokenFile string `yaml:"bot_token_file"`
		} `yaml:"slack"`
		Sinks []map[string]any `yaml:"sinks"`
	}
	if err := yaml.Unmarshal([]byte(medicYAML), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Slack.BotTokenFile != slackBotTokenPath || cfg.ClusterName != "prod-eu" {
		t.Errorf("slack.bot_token_file %q, cluster_name %q", cfg.Slack.BotTokenFile, cfg.ClusterName)
	}
	var teams map[string]any
	for _, s := range cfg.Sinks {
		if s["type"] == "teams" {
			teams = s
		}
	}
	if teams["webhook_url_file"] != secretPath("teams_sink", "webhook_url") {
		t.Errorf("the Teams sink reads its webhook from %v, want %s\n%s", teams["webhook_url_file"], secretPath("teams_sink", "webhook_url"), medicYAML)
	}
	// The Secret medic-sinks is what the pod mounts, under the keys the
	// report lists.
	for _, s := range res.Secrets {
		if !strings.Contains(out, "name: "+SecretName) || !strings.Contains(out, "key: "+s.SecretKey) {
			t.Errorf("the chart does not mount %s/%s", SecretName, s.SecretKey)
		}
	}
	// medic loads the rendered configuration's sinks and the converted
	// playbooks (the secret files aside, which exist only in the pod).
	var sinksOnly struct {
		Sinks []map[string]any `yaml:"sinks"`
	}
	if err := yaml.Unmarshal([]byte(medicYAML), &sinksOnly); err != nil {
		t.Fatal(err)
	}
	frag, err := yaml.Marshal(sinksOnly)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "medic.yaml")
	if err := os.WriteFile(path, frag, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path, nil, plugins.ValidateConfig); err != nil {
		t.Errorf("the rendered sinks do not load: %v\n%s", err, frag)
	}
}
