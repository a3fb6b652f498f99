package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/test/deploy"
)

// README's values table is generated from values.yaml's comments and is
// current (make docs-values rewrites it).
func TestREADMEValuesTableUpToDate(t *testing.T) {
	readme := must(deploy.ReadFile("README.md"))
	want, err := deploy.RenderValuesSection(readme)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(readme) {
		t.Fatalf("README.md's values table is out of date: run make docs-values\n%s", testkit.FirstDiff(string(readme), string(want)))
	}
}

// Every key of values.yaml is documented, itself or by its parent.
func TestEveryValueIsDocumented(t *testing.T) {
	values := must(os.ReadFile(filepath.Join(must(deploy.ChartDir()), "values.yaml")))
	docs, undocumented, err := deploy.DocumentValues(values)
	if err != nil {
		t.Fatal(err)
	}
	if len(undocumented) > 0 {
		t.Errorf("values.yaml keys without a \"# --\" comment: %v", undocumented)
	}
	if len(docs) < 50 {
		t.Errorf("only %d documented keys", len(docs))
	}
	// The generator itself: a continued comment, a nested key, an undocumented one.
	d, u, err := deploy.DocumentValues([]byte("# -- first line\n# second line\na: 1\nb:\n  # -- nested\n  c: [x]\n  d: \"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 2 || d[0].Description != "first line second line" || d[1].Key != "b.c" || d[1].Default != `["x"]` || len(u) != 1 || u[0] != "b.d" {
		t.Errorf("DocumentValues: %+v, undocumented %v", d, u)
	}
}

// readmeInstall returns README's "Install the chart" part of "Install in a
// cluster" (after "Get medic", which builds the image): its commands
// (comments and line continuations gone), and its medic-values.yaml and
// alertmanager-medic.yaml blocks.
func readmeInstall(t *testing.T) (commands []string, values, amValues string) {
	t.Helper()
	readme := string(must(deploy.ReadFile("README.md")))
	start := strings.Index(readme, "\n## Install in a cluster\n")
	if start < 0 {
		t.Fatal("README.md has no \"Install in a cluster\" section")
	}
	section := readme[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	chart := strings.Index(section, "\n### Install the chart\n")
	if chart < 0 {
		t.Fatal("README's \"Install in a cluster\" has no \"Install the chart\" part")
	}
	section = section[chart+1:]
	blocks := regexp.MustCompile("(?s)```(\\w+)\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) < 3 || blocks[0][1] != "sh" {
		t.Fatalf("expected a sh block then the values files, got %d blocks", len(blocks))
	}
	for _, line := range strings.Split(strings.ReplaceAll(blocks[0][2], "\\\n", " "), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			commands = append(commands, line)
		}
	}
	for _, b := range blocks[1:] {
		switch {
		case strings.HasPrefix(b[2], "# medic-values.yaml"):
			values = b[2]
		case strings.HasPrefix(b[2], "# alertmanager-medic.yaml"):
			amValues = b[2]
		}
	}
	if values == "" || amValues == "" {
		t.Fatal("the section lacks medic-values.yaml or alertmanager-medic.yaml")
	}
	return commands, values, amValues
}

var (
	createSecret = regexp.MustCompile(`create secret generic ([a-z0-9][a-z0-9.-]*)((?:\s+--from-(?:literal|file)=[^\s=]+=(?:"[^"]*"|'[^']*'|[^\s"'])*)+)`)
	fromKey      = regexp.MustCompile(`--from-(?:literal|file)=([^\s=]+)=`)
	secretRef    = regexp.MustCompile(`secretKeyRef:\s*\{name:\s*([a-z0-9][a-z0-9.-]*),\s*key:\s*([A-Za-z0-9._-]+)\}`)
)

// createdSecrets returns the Secrets that the `kubectl create secret
// generic` commands in text create (in a shell block or a comment, line
// continuations joined), with their keys.
func createdSecrets(text string) map[string]map[string]bool {
	text = regexp.MustCompile(`\\\n[#\s]*`).ReplaceAllString(text, " ")
	out := map[string]map[string]bool{}
	for _, m := range createSecret.FindAllStringSubmatch(text, -1) {
		if out[m[1]] == nil {
			out[m[1]] = map[string]bool{}
		}
		for _, k := range fromKey.FindAllStringSubmatch(m[2], -1) {
			out[m[1]][k[1]] = true
		}
	}
	return out
}

// "Install in a cluster" is three commands, and the Alertmanager receiver
// it shows is the one the chart's NOTES print for those values.
func TestREADMEInstallsInThreeCommands(t *testing.T) {
	commands, values, amValues := readmeInstall(t)
	if len(commands) != 3 || !strings.HasPrefix(commands[0], "kubectl -n monitoring create secret generic ") ||
		!strings.HasPrefix(commands[1], "helm install medic deploy/helm/medic -n monitoring -f medic-values.yaml") || !strings.HasPrefix(commands[2], "helm upgrade") {
		t.Fatalf("the install is not: create the secret, helm install, point Alertmanager:\n%s", strings.Join(commands, "\n"))
	}
	created := createdSecrets(commands[0])
	if len(created) != 1 {
		t.Fatalf("the first command does not create one Secret: %s", commands[0])
	}
	var secret string
	for name := range created {
		secret = name
	}
	if testing.Short() && !deploy.HelmBuilt() {
		return
	}
	needHelm(t)
	path := filepath.Join(t.TempDir(), "medic-values.yaml")
	writeFile(t, path, values)
	notes := renderNotes(t, "monitoring", []string{path})
	for _, line := range []string{
		"- url: http://medic.monitoring.svc:8080/api/alerts",
		"credentials_file: /etc/alertmanager/secrets/" + secret + "/alertmanager-token",
		"send_resolved: true",
		"max_alerts: 0",
	} {
		if !strings.Contains(notes, line) || !strings.Contains(amValues, line) {
			t.Errorf("%q: in NOTES %v, in README's alertmanager-medic.yaml %v", line, strings.Contains(notes, line), strings.Contains(amValues, line))
		}
	}
	if !strings.Contains(amValues, "secrets: ["+secret+"]") {
		t.Error("alertmanager-medic.yaml does not mount the Secret the token is in")
	}
	// The secret the first command creates holds the keys the values name.
	for _, key := range regexp.MustCompile(`key: ([\w-]+)`).FindAllStringSubmatch(values, -1) {
		if !created[secret][key[1]] {
			t.Errorf("the values read key %s, which the first command does not create", key[1])
		}
	}
}

// Every Secret reference of the chart's examples, its values.yaml and
// README's install names the one Secret README's install creates, with a
// key that the `kubectl create secret` in the file's own header (or README's
// first command) creates; and that Secret is not the one the chart makes
// for secrets given as values, which `helm install` would refuse to adopt.
func TestExampleSecretsMatchREADME(t *testing.T) {
	commands, values, _ := readmeInstall(t)
	readme := createdSecrets(commands[0])
	if len(readme) != 1 {
		t.Fatalf("README's first command does not create one Secret: %s", commands[0])
	}
	var secret string
	for name := range readme {
		secret = name
	}
	files := map[string]string{"README.md (medic-values.yaml)": values}
	examples := must(filepath.Glob(filepath.Join(must(deploy.ChartDir()), "examples", "*.yaml")))
	for _, path := range append(examples, filepath.Join(must(deploy.ChartDir()), "values.yaml")) {
		files[filepath.Base(path)] = string(must(os.ReadFile(path)))
	}
	refs := 0
	for name, text := range files {
		created := createdSecrets(text)
		for _, m := range secretRef.FindAllStringSubmatch(text, -1) {
			refs++
			if m[1] != secret {
				t.Errorf("%s: secretKeyRef {name: %s, key: %s}: README's install creates Secret %s", name, m[1], m[2], secret)
				continue
			}
			// values.yaml's documentation examples name keys of the reader's choosing.
			if name != "values.yaml" && !created[secret][m[2]] && !readme[secret][m[2]] {
				t.Errorf("%s: key %s of Secret %s is not created by the kubectl command in its header nor README's", name, m[2], secret)
			}
		}
		for other := range created {
			if other != secret {
				t.Errorf("%s: its header creates Secret %s; README's install creates %s", name, other, secret)
			}
		}
	}
	if refs < 5 {
		t.Fatalf("only %d secretKeyRef found: the pattern no longer matches the files", refs)
	}
	if testing.Short() && !deploy.HelmBuilt() {
		return
	}
	needHelm(t)
	for _, vs := range valuesSets(t) {
		_, objs := render(t, vs.Files)
		if s := objs.Get("Secret", secret); s != nil {
			t.Errorf("%s: the chart itself renders Secret %s, the name README's install gives the Secret you create", vs.Name, secret)
		}
	}
}

// Helm's version is pinned once: build-helm.sh, Makefile.tools.mk and the
// tests agree.
func TestHelmVersionPinnedOnce(t *testing.T) {
	script := string(must(deploy.ReadFile("test/tools/build-helm.sh")))
	mk := string(must(deploy.ReadFile("Makefile.tools.mk")))
	if !strings.Contains(script, `HELM_VERSION="${HELM_VERSION:-`+deploy.HelmVersion+`}"`) {
		t.Errorf("test/tools/build-helm.sh does not default to %s", deploy.HelmVersion)
	}
	if !strings.Contains(mk, "HELM_VERSION := "+deploy.HelmVersion+"\n") {
		t.Errorf("Makefile.tools.mk does not pin %s", deploy.HelmVersion)
	}
}
