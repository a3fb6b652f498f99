package deploy_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/medichq/medic/test/deploy"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, …
	args string
}

type stage struct {
	from, name string
	ins        []instruction
}

// parseDockerfile reads instructions and groups them by stage, resolving
// the global ARG defaults in FROM lines.
func parseDockerfile(t *testing.T, text string) []stage {
	t.Helper()
	var ins []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasPrefix(line, "#") { // a comment inside a continued instruction
			continue
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		ins = append(ins, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	global := map[string]string{}
	var stages []stage
	for _, in := range ins {
		switch {
		case in.cmd == "ARG" && len(stages) == 0:
			k, v, _ := strings.Cut(in.args, "=")
			global[k] = v
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			image := regexp.MustCompile(`\$\{(\w+)\}`).ReplaceAllStringFunc(f[0], func(m string) string {
				return global[strings.Trim(m, "${}")]
			})
			st := stage{from: image}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
		case len(stages) > 0:
			stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
		}
	}
	return stages
}

func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// The Dockerfile: a multi-stage build, a static binary built with
// `make build`'s command, pinned base images, a distroless non-root final
// stage that agrees with the chart (binary path, user, workingDir, port).
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, string(must(deploy.ReadFile("Dockerfile"))))
	if len(stages) < 2 {
		t.Fatalf("%d stages: the image must be built in a builder stage", len(stages))
	}
	for _, s := range stages {
		image := s.from
		if strings.Contains(image, "@sha256:") {
			continue
		}
		i := strings.LastIndex(image, ":")
		if i < 0 || strings.Contains(image[i:], "/") || image[i+1:] == "latest" || image[i+1:] == "" {
			t.Errorf("FROM %s: pin a tag (or a digest)", image)
		}
	}
	build, final := stages[0], stages[len(stages)-1]
	goMod := string(must(deploy.ReadFile("go.mod")))
	// The builder uses the release toolchain: go.mod's toolchain line when it
	// has one, else its go line.
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(goMod)[1]
	if m := regexp.MustCompile(`(?m)^toolchain go(\S+)$`).FindStringSubmatch(goMod); m != nil {
		goVersion = m[1]
	}
	if !strings.HasPrefix(build.from, "golang:"+goVersion) {
		t.Errorf("builder FROM %s, go.mod says go %s", build.from, goVersion)
	}
	runs := strings.Join(build.all("RUN"), "\n")
	for _, want := range []string{
		"CGO_ENABLED=0",
		"go build -trimpath",
		`-ldflags "-s -w -X github.com/medichq/medic/internal/version.Version=${VERSION}"`,
		"./cmd/medic",
	} {
		if !strings.Contains(runs, want) {
			t.Errorf("the build stage does not run %q:\n%s", want, runs)
		}
	}
	// The same flags as medicBinary (and make build), which builds and checks it here.
	args := strings.Join(buildArgs("/out/medic", "${VERSION}"), " ")
	args = strings.Replace(args, "-ldflags -s -w", `-ldflags "-s -w`, 1)
	args = strings.Replace(args, "${VERSION} -o", `${VERSION}" -o`, 1)
	if !strings.Contains(strings.Join(strings.Fields(runs), " "), "go "+args) {
		t.Errorf("the Dockerfile's build command differs from the one the tests build with: go %s", args)
	}
	makefile := string(must(deploy.ReadFile("Makefile")))
	if !strings.Contains(makefile, "CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'") || !strings.Contains(makefile, "LDFLAGS := -s -w -X github.com/medichq/medic/internal/version.Version=") {
		t.Error("make build no longer builds the way the Dockerfile does")
	}

	if final.from != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage FROM %s, want gcr.io/distroless/static-debian12:nonroot", final.from)
	}
	if r := final.all("RUN"); len(r) > 0 {
		t.Errorf("the final stage runs commands (distroless has no shell): %v", r)
	}
	if a := final.all("ADD"); len(a) > 0 {
		t.Errorf("ADD in the final stage: %v", a)
	}
	want := map[string]string{
		"USER":       "65532:65532",
		"WORKDIR":    "/var/lib/medic",
		"ENTRYPOINT": `["/medic", "serve"]`,
		"EXPOSE":     "8080",
	}
	for cmd, v := range want {
		got := final.all(cmd)
		if len(got) != 1 || got[0] != v {
			t.Errorf("final stage %s %v, want %s", cmd, got, v)
		}
	}
	copies := strings.Join(final.all("COPY"), "\n")
	if !strings.Contains(copies, "--from=build /out/medic /medic") {
		t.Errorf("the final stage does not copy the binary to /medic:\n%s", copies)
	}

	// The chart runs what the image holds, as the image's user.
	if testing.Short() && !deploy.HelmBuilt() {
		return
	}
	needHelm(t)
	_, objs := render(t, nil)
	pod := deployment(t, objs).Spec.Template.Spec
	c := pod.Containers[0]
	var entry []string
	if err := json.Unmarshal([]byte(want["ENTRYPOINT"]), &entry); err != nil {
		t.Fatal(err)
	}
	if c.Command[0] != entry[0] || c.Args[0] != entry[1] || c.WorkingDir != want["WORKDIR"] ||
		*pod.SecurityContext.RunAsUser != 65532 || *pod.SecurityContext.RunAsGroup != 65532 || portOf(t, c, "http") != 8080 {
		t.Errorf("the chart's container (%v %v in %s as %d:%d) does not match the image", c.Command, c.Args, c.WorkingDir,
			*pod.SecurityContext.RunAsUser, *pod.SecurityContext.RunAsGroup)
	}
}

// .dockerignore keeps the tools folder (gigabytes of built servers), Git
// and local data out of the build context, and keeps what the build needs.
func TestDockerignore(t *testing.T) {
	lines := map[string]bool{}
	for _, l := range strings.Split(string(must(deploy.ReadFile(".dockerignore"))), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines[l] = true
		}
	}
	for _, want := range []string{".git", ".tools", "data", "bin"} {
		if !lines[want] {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	for _, needed := range []string{"go.mod", "go.sum", "cmd", "knowledge", "playbooks", "*.go", "**/*.yaml", "**/*.md"} {
		if lines[needed] {
			t.Errorf(".dockerignore excludes %s, which the build needs", needed)
		}
	}
}

// The Dockerfile's build command works outside Docker and gives a static
// binary (no ELF interpreter, no shared libraries) that carries the
// built-in playbooks and the default knowledge base, byte for byte.
func TestStaticBinaryCarriesPlaybooksAndRunbooks(t *testing.T) {
	bin := medicBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has an ELF interpreter: it is dynamically linked")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries: %v", libs)
	}
	data := must(os.ReadFile(bin))
	root := must(deploy.RepoRoot())
	n := 0
	for _, dir := range []string{"playbooks/builtin", "knowledge/runbooks"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.Contains(p, "testdata") {
				return err
			}
			if !strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".md") {
				return nil
			}
			n++
			if !bytes.Contains(data, must(os.ReadFile(p))) {
				t.Errorf("%s is not embedded in the binary", p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 100 {
		t.Errorf("only %d playbook and runbook files checked", n)
	}
	// And they work without the source tree: in an empty folder.
	run := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Dir = t.TempDir()
		cmd.Env = []string{"HOME=" + cmd.Dir}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("medic %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("version"); !strings.Contains(out, "medic deploy-test") {
		t.Errorf("medic version: %s", out)
	}
	if out := run("playbooks", "list", "."); !strings.Contains(out, "builtin-pod-crash-loop") || !strings.Contains(out, "builtin:kubernetes-alerts.yaml") {
		t.Errorf("medic playbooks list in an empty folder:\n%s", out)
	}
}
