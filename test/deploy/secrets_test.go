package deploy_test

import (
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/plugins" // the plugins, and the validation of their configuration
	"github.com/medichq/medic/test/deploy"
)

const canaryValues = "test/deploy/testdata/canary.values.yaml"

// canaries are the secret strings of testdata/canary.values.yaml.
func canaries(t *testing.T) []string {
	t.Helper()
	raw := string(must(deploy.ReadFile(canaryValues)))
	found := regexp.MustCompile(`canary-[a-z-]+-[0-9a-f]{4}`).FindAllString(raw, -1)
	if len(found) < 13 {
		t.Fatalf("only %d canaries in %s", len(found), canaryValues)
	}
	return found
}

// Every secret the chart takes, given as a value, ends up in the chart's
// Secret and in no ConfigMap (nor any other object); medic.yaml names only
// the files where medic reads them.
func TestNoSecretValueInAnyConfigMap(t *testing.T) {
	needHelm(t)
	_, objs := render(t, []string{canaryValues})
	secrets := must(deploy.SecretValues(objs))
	var stored []string
	for _, v := range secrets {
		stored = append(stored, v)
	}
	all := strings.Join(stored, "\n")
	for _, c := range canaries(t) {
		if !strings.Contains(all, c) {
			t.Errorf("canary %s is not in the chart's Secret", c)
		}
	}
	if p := deploy.CheckSecretsNotInConfigMaps(objs, stored); len(p) > 0 {
		t.Errorf("secrets outside Secrets:\n  %s", strings.Join(p, "\n  "))
	}
	if p := deploy.CheckSecretsNotInConfigMaps(objs, canaries(t)); len(p) > 0 {
		t.Errorf("canaries outside Secrets:\n  %s", strings.Join(p, "\n  "))
	}
	medicYAML := must(deploy.MedicConfig(objs))
	if p := deploy.CheckConfigHasNoInlineSecrets(medicYAML); len(p) > 0 {
		t.Errorf("medic.yaml:\n  %s", strings.Join(p, "\n  "))
	}
	// Each *_file medic reads is a file of the secrets volume.
	files := secretFiles(t, objs)
	for _, path := range regexp.MustCompile(`_file: (\S+)`).FindAllStringSubmatch(medicYAML, -1) {
		if !files[path[1]] {
			t.Errorf("medic.yaml reads %s, which no mounted Secret provides (mounted: %v)", path[1], keys(files))
		}
	}
	if len(files) != len(secrets) {
		t.Errorf("%d secret files mounted, %d values in the chart's Secret", len(files), len(secrets))
	}
}

// The same holds for the defaults and every example: medic.yaml has no
// inline secret, no Secret value appears outside a Secret, and each secret
// reference ({secretKeyRef}) is mounted, not copied.
func TestExamplesKeepSecretsOutOfConfigMaps(t *testing.T) {
	needHelm(t)
	for _, vs := range valuesSets(t) {
		t.Run(vs.Name, func(t *testing.T) {
			_, objs := render(t, vs.Files)
			secrets := must(deploy.SecretValues(objs))
			var stored []string
			for _, v := range secrets {
				stored = append(stored, v)
			}
			if p := deploy.CheckSecretsNotInConfigMaps(objs, stored); len(p) > 0 {
				t.Errorf("secrets outside Secrets:\n  %s", strings.Join(p, "\n  "))
			}
			medicYAML := must(deploy.MedicConfig(objs))
			if p := deploy.CheckConfigHasNoInlineSecrets(medicYAML); len(p) > 0 {
				t.Errorf("medic.yaml:\n  %s", strings.Join(p, "\n  "))
			}
			files := secretFiles(t, objs)
			for _, path := range regexp.MustCompile(`_file: (\S+)`).FindAllStringSubmatch(medicYAML, -1) {
				if !files[path[1]] {
					t.Errorf("medic.yaml reads %s, which no mounted Secret provides", path[1])
				}
			}
		})
	}
}

// The checker fails when a ConfigMap holds a secret value.
func TestSecretCheckCatchesConfigMapLeaks(t *testing.T) {
	objs := must(deploy.ParseManifests(`
apiVersion: v1
kind: Secret
metadata: {name: medic}
data: {token: c3VwZXItc2VjcmV0LXRva2Vu}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: medic-config}
data:
  medic.yaml: |
    webhook:
      bearer_token: super-secret-token
`))
	secrets := must(deploy.SecretValues(objs))
	if secrets["medic/token"] != "super-secret-token" {
		t.Fatalf("secret values: %v", secrets)
	}
	if p := deploy.CheckSecretsNotInConfigMaps(objs, []string{"super-secret-token"}); len(p) != 1 || !strings.Contains(p[0], "ConfigMap medic-config contains a secret value") {
		t.Errorf("CheckSecretsNotInConfigMaps: %v", p)
	}
	if p := deploy.CheckConfigHasNoInlineSecrets(must(deploy.MedicConfig(objs))); len(p) != 1 || !strings.Contains(p[0], "webhook.bearer_token holds a secret inline") {
		t.Errorf("CheckConfigHasNoInlineSecrets: %v", p)
	}
}

// The medic.yaml the chart renders is one medic accepts: with every values
// set, config.Load (strict: unknown keys are errors) loads and validates it,
// secrets read from files standing in for the mounted Secrets.
func TestRenderedConfigLoads(t *testing.T) {
	needHelm(t)
	sets := valuesSets(t)
	sets = append(sets, deploy.ValuesSet{Name: "canary", Files: []string{canaryValues}})
	for _, vs := range sets {
		t.Run(vs.Name, func(t *testing.T) {
			_, objs := render(t, vs.Files)
			medicYAML := must(deploy.MedicConfig(objs))
			dir := t.TempDir()
			secretsDir := filepath.Join(dir, "secrets")
			text := strings.ReplaceAll(medicYAML, "/var/run/secrets/medic/", secretsDir+"/")
			values := must(deploy.SecretValues(objs))
			for file := range secretFiles(t, objs) {
				name := filepath.Base(file)
				v, ok := values["medic/"+name]
				if !ok { // a reference to a Secret the user creates
					v = "placeholder-" + name
					if strings.HasPrefix(name, "slack-bot") {
						v = "xoxb-placeholder"
					}
					if strings.Contains(name, "url") {
						v = "https://example.com/" + name
					}
				}
				writeFile(t, filepath.Join(secretsDir, name), v)
			}
			path := filepath.Join(dir, "medic.yaml")
			writeFile(t, path, text)
			cfg, err := config.Load(path, nil, plugins.Builtin().ValidateConfig)
			if err != nil {
				t.Fatalf("medic refuses the rendered configuration: %v\n%s", err, text)
			}
			if cfg.DataDir != "/var/lib/medic" || cfg.HTTP.Addr != ":8080" {
				t.Errorf("data_dir %q, http.addr %q", cfg.DataDir, cfg.HTTP.Addr)
			}
		})
	}
}

// secretFiles returns the paths of the files the pod's secrets volume
// provides (mountPath/item path).
func secretFiles(t *testing.T, objs deploy.Objects) map[string]bool {
	t.Helper()
	files := map[string]bool{}
	dep := objs.Of("Deployment")
	if len(dep) != 1 {
		t.Fatalf("%d Deployments", len(dep))
	}
	pod := podSpec(t, dep[0])
	mounts := map[string]string{}
	for _, m := range pod.Spec.Containers[0].VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, src := range v.Projected.Sources {
			if src.Secret == nil {
				t.Errorf("volume %s projects something else than a Secret", v.Name)
				continue
			}
			for _, it := range src.Secret.Items {
				files[mounts[v.Name]+"/"+it.Path] = true
			}
		}
	}
	return files
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The checks above read medic.yaml from the ConfigMap; make sure that is
// the file the container is started with.
func TestContainerReadsTheRenderedConfig(t *testing.T) {
	needHelm(t)
	_, objs := render(t, nil)
	pod := podSpec(t, objs.Of("Deployment")[0])
	c := pod.Spec.Containers[0]
	args := strings.Join(append(append([]string{}, c.Command...), c.Args...), " ")
	if args != "/medic serve --config /etc/medic/config/medic.yaml" {
		t.Fatalf("container runs %q", args)
	}
	var found bool
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/etc/medic/config" {
			for _, v := range pod.Spec.Volumes {
				if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == "medic-config" {
					found = true
				}
			}
		}
	}
	if !found {
		t.Fatal("/etc/medic/config is not the ConfigMap medic-config")
	}
	cm := objs.Get("ConfigMap", "medic-config")
	var doc map[string]any
	s, _, _ := unstructured.NestedString(cm.Object, "data", "medic.yaml")
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil || doc["data_dir"] != "/var/lib/medic" {
		t.Fatalf("medic.yaml: %v %v", err, doc)
	}
}
