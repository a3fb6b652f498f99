package deploy_test

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/test/deploy"
)

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Command     []string          `yaml:"command"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	ReadOnly    bool              `yaml:"read_only"`
	Tmpfs       []string          `yaml:"tmpfs"`
	CapDrop     []string          `yaml:"cap_drop"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Networks map[string]struct {
		Aliases []string `yaml:"aliases"`
	} `yaml:"networks"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

// deploy/compose.yaml wires medic to NATS, Weaviate and Ollama by their
// service names, with settings medic accepts, and Alertmanager, configured
// by the example deploy/alertmanager/alertmanager.yml, to medic's webhook.
// (Docker cannot run here; this checks the wiring the file declares.)
func TestComposeWiring(t *testing.T) {
	root := must(deploy.RepoRoot())
	composeDir := filepath.Join(root, "deploy")
	var cf composeFile
	dec := yaml.NewDecoder(strings.NewReader(string(must(os.ReadFile(filepath.Join(composeDir, "compose.yaml"))))))
	dec.KnownFields(false)
	if err := dec.Decode(&cf); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"medic", "nats", "weaviate", "ollama", "alertmanager"} {
		if _, ok := cf.Services[name]; !ok {
			t.Fatalf("no service %s", name)
		}
	}
	for name, s := range cf.Services {
		if s.Build != nil {
			continue
		}
		i := strings.LastIndex(s.Image, ":")
		if i < 0 || strings.Contains(s.Image[i:], "/") || s.Image[i+1:] == "latest" {
			t.Errorf("service %s: image %q has no pinned tag", name, s.Image)
		}
	}

	medic := cf.Services["medic"]
	if medic.Build == nil {
		t.Fatal("medic is not built from the repository")
	}
	if _, err := os.Stat(filepath.Join(composeDir, medic.Build.Context, medic.Build.Dockerfile)); err != nil {
		t.Errorf("medic's build: %v", err)
	}
	env := medic.Environment
	// Every variable is a medic setting (a typo would only be a warning in
	// medic's log), and together they are a configuration medic accepts.
	known := config.EnvNames()
	var environ []string
	for k, v := range env {
		if !slices.Contains(known, k) {
			t.Errorf("medic's environment: %s is not a medic setting", k)
		}
		environ = append(environ, k+"="+v)
	}
	cfg, err := config.Load("", environ)
	if err != nil {
		t.Fatalf("medic refuses the compose environment: %v", err)
	}

	hostPort := func(what, raw string) (string, string) {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return u.Hostname(), u.Port()
	}
	// NATS: external, with JetStream on.
	if h, p := hostPort("bus.url", cfg.Bus.URL); h != "nats" || p != "4222" {
		t.Errorf("medic's NATS is %s, want the nats service on 4222", cfg.Bus.URL)
	}
	natsCmd := strings.Join(cf.Services["nats"].Command, " ")
	if !strings.Contains(natsCmd, "--jetstream") && !strings.Contains(natsCmd, "-js") {
		t.Errorf("nats runs without JetStream: %s", natsCmd)
	}
	// Weaviate: the knowledge base, no vectorizer (medic sends vectors).
	if cfg.KnowledgeBase.Store != "weaviate" {
		t.Errorf("knowledge_base.store %s", cfg.KnowledgeBase.Store)
	}
	if h, p := hostPort("weaviate", cfg.KnowledgeBase.Weaviate.URL); h != "weaviate" || p != "8080" {
		t.Errorf("medic's Weaviate is %s, want the weaviate service on 8080", cfg.KnowledgeBase.Weaviate.URL)
	}
	if v := cf.Services["weaviate"].Environment["DEFAULT_VECTORIZER_MODULE"]; v != "none" {
		t.Errorf("weaviate's vectorizer %q, want none", v)
	}
	// Ollama: the OpenAI-compatible API, with the models medic asks for pulled.
	if h, p := hostPort("ai.base_url", cfg.AI.BaseURL); h != "ollama" || p != "11434" || !strings.HasSuffix(cfg.AI.BaseURL, "/v1") {
		t.Errorf("medic's model server is %s, want http://ollama:11434/v1", cfg.AI.BaseURL)
	}
	pull := strings.Join(cf.Services["ollama-models"].Entrypoint, " ")
	for _, m := range []string{cfg.AI.ChatModel, cfg.AI.EmbeddingModel} {
		if m == "" || !strings.Contains(pull, "ollama pull "+m) {
			t.Errorf("model %q is not pulled by ollama-models (%s)", m, pull)
		}
	}
	if h, _ := hostPort("OLLAMA_HOST", cf.Services["ollama-models"].Environment["OLLAMA_HOST"]); h != "ollama" {
		t.Errorf("ollama-models pulls into %s", h)
	}
	for _, dep := range []string{"nats", "weaviate", "ollama-models"} {
		if _, ok := medic.DependsOn[dep]; !ok {
			t.Errorf("medic does not wait for %s", dep)
		}
	}

	// medic: its port published, its data on a volume, read-only root as in the chart.
	_, listen, _ := net.SplitHostPort(cfg.HTTP.Addr)
	if !slices.Contains(medic.Ports, listen+":"+listen) {
		t.Errorf("medic listens on %s; ports %v", cfg.HTTP.Addr, medic.Ports)
	}
	if !medic.ReadOnly || !slices.Contains(medic.Tmpfs, "/tmp") || !slices.Contains(medic.CapDrop, "ALL") {
		t.Error("medic's container is not read-only with a /tmp tmpfs and no capabilities")
	}
	var dataVolume bool
	for _, v := range medic.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == cfg.DataDir {
			_, named := cf.Volumes[parts[0]]
			dataVolume = named
		}
	}
	if !dataVolume {
		t.Errorf("data_dir %s is not a named volume: %v", cfg.DataDir, medic.Volumes)
	}

	// Alertmanager: the example configuration, mounted unchanged, posts to medic.
	am := cf.Services["alertmanager"]
	var amConfig, mounted string
	for _, a := range am.Command {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			amConfig = v
		}
	}
	for _, v := range am.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == amConfig {
			mounted = filepath.Join(composeDir, parts[0])
		}
	}
	if mounted != filepath.Join(root, "deploy", "alertmanager", "alertmanager.yml") {
		t.Fatalf("alertmanager reads %s from %q, want deploy/alertmanager/alertmanager.yml", amConfig, mounted)
	}
	var amc struct {
		Route struct {
			Receiver string `yaml:"receiver"`
		} `yaml:"route"`
		Receivers []struct {
			Name           string `yaml:"name"`
			WebhookConfigs []struct {
				URL string `yaml:"url"`
			} `yaml:"webhook_configs"`
		} `yaml:"receivers"`
	}
	if err := yaml.Unmarshal(must(os.ReadFile(mounted)), &amc); err != nil {
		t.Fatal(err)
	}
	var hook string
	for _, r := range amc.Receivers {
		if r.Name == amc.Route.Receiver && len(r.WebhookConfigs) > 0 {
			hook = r.WebhookConfigs[0].URL
		}
	}
	u, err := url.Parse(hook)
	if err != nil || hook == "" {
		t.Fatalf("alertmanager.yml's route does not end in a webhook receiver (%q)", hook)
	}
	names := []string{"medic"}
	for _, n := range medic.Networks {
		names = append(names, n.Aliases...)
	}
	if !slices.Contains(names, u.Hostname()) || u.Port() != listen || u.Path != "/api/alerts" {
		t.Errorf("Alertmanager posts to %s; medic is reachable as %v on port %s at /api/alerts", hook, names, listen)
	}
	if _, ok := am.DependsOn["medic"]; !ok {
		t.Error("alertmanager does not start after medic")
	}
}
