package robusta

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/fixtures"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/playbooks/playtest"
	"github.com/medichq/medic/sinks"
)

// corpusCanary is in every secret of the corpus.
const corpusCanary = "CORPUS-SECRET"

// exercised are the triggers the recorded events exercise: a converted
// playbook whose triggers are all among them must match one of the events.
var exercised = []string{"on_prometheus_alert", "on_pod_crash_loop", "on_image_pull_backoff"}

// TestCorpus converts the corpus of Robusta values (testdata/corpus, in
// the shapes Robusta's documentation, Helm chart and ChatGPT integration
// show) with this binary's registries. It reports the table by kind and
// file; asserts that nothing leaks a secret, that every converted file
// validates as `medic playbooks validate` does and that the converted
// playbooks run against recorded events (playtest, as `medic playbooks
// test` does). testdata/corpus.table.golden is a floor: the figures may rise
// as medic gains triggers, actions and sinks (go test -update records
// them), never fall.
func TestCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "corpus", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("corpus: %v %v", files, err)
	}
	slices.Sort(files)
	recorded := recordedEvents(t)

	total := map[string]*SummaryRow{}
	for _, k := range Kinds {
		total[k] = &SummaryRow{Kind: k}
	}
	var perFile strings.Builder
	matched := map[string]bool{} // event title → matched by a converted playbook
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(path)
		res, err := Convert(data, name, Options{Plugins: testPlugins})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rows := res.Summary()
		fmt.Fprintf(&perFile, "\n%s\n%s", name, Table(rows))
		for _, r := range rows {
			total[r.Kind].Converted += r.Converted
			total[r.Kind].Lossy += r.Lossy
			total[r.Kind].NotConverted += r.NotConverted
		}
		noSecrets(t, name, res)
		set, specs := loads(t, res)
		runs(t, name, res, set, specs, recorded, matched)
		for _, it := range res.Items {
			if it.Outcome != Converted && len(it.Reasons) == 0 {
				t.Errorf("%s: %s without a reason: %+v", name, it.Outcome, it)
			}
		}
	}
	var rows []SummaryRow
	for _, k := range Kinds {
		rows = append(rows, *total[k])
	}
	table := Table(rows)
	t.Logf("the corpus, all files:\n%s%s", table, perFile.String())
	if total[KindPlaybook].Total() < 40 || total[KindSink].Total() < 40 {
		t.Errorf("the corpus has %d playbooks and %d sinks, want at least 40 of each", total[KindPlaybook].Total(), total[KindSink].Total())
	}
	for _, title := range []string{"KubePodCrashLooping", "KubeNodeNotReady"} {
		if !matched[title] {
			t.Errorf("no converted playbook runs on the recorded %s alert", title)
		}
	}
	floor(t, filepath.Join("testdata", "corpus.table.golden"), rows, table)
}

// recordedEvents are the corpus's Alertmanager message and the alerts and
// pods captured from real systems in internal/fixtures.
func recordedEvents(t *testing.T) [][]byte {
	t.Helper()
	docs := [][]byte{
		fixtures.Read(t, "payloads", "alertmanager", "captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json"),
		fixtures.Read(t, "payloads", "alertmanager", "captured-alertmanager-v0.34.2__KubeNodeNotReady__firing.json"),
		fixtures.Read(t, "payloads", "k8s", "crashloopbackoff", "gitops-engine__pod-crashloop.yaml"),
		fixtures.Read(t, "payloads", "k8s", "imagepullbackoff", "gitops-engine__pod-imagepullbackoff.yaml"),
	}
	own, err := os.ReadFile(filepath.Join("testdata", "corpus", "events", "alerts.json"))
	if err != nil {
		t.Fatal(err)
	}
	return append(docs, own)
}

func noSecrets(t *testing.T, name string, res *Result) {
	t.Helper()
	for what, out := range outputs(t, res) {
		if i := strings.Index(out, corpusCanary); i >= 0 {
			t.Errorf("%s: %s holds a secret: …%s…", name, what, out[max(0, i-80):min(len(out), i+40)])
		}
	}
	var v any
	if err := yaml.Unmarshal(res.HelmValues, &v); err != nil {
		t.Errorf("%s: values.yaml is not YAML: %v", name, err)
	}
}

// runs runs every recorded event through the converted playbooks: the
// sinks they name exist, and each playbook on exercised triggers matches
// an event.
func runs(t *testing.T, name string, res *Result, set *playbooks.Set, specs []sinks.Spec, recorded [][]byte, matched map[string]bool) {
	t.Helper()
	var pbs []playbookOut
	if err := yaml.Unmarshal(res.Playbooks, &pbs); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if got, want := len(pbs), res.Count(KindPlaybook, Converted)+res.Count(KindPlaybook, Lossy); got != want {
		t.Errorf("%s: %d playbooks written, %d reported converted", name, got, want)
	}
	ours := map[string]bool{}
	for _, pb := range pbs {
		ours[pb.Name] = true
	}
	ran := map[string]bool{}
	for _, doc := range recorded {
		evs, err := playtest.DecodeEvents(doc, set)
		if err != nil {
			t.Fatalf("%s: recorded event: %v", name, err)
		}
		for i := range evs {
			rep := playtest.Run(set, &evs[i], specs)
			if len(rep.UnknownSinks) > 0 {
				t.Errorf("%s: event %s goes to sinks that are not configured: %v", name, evs[i].Title, rep.UnknownSinks)
			}
			for _, m := range rep.Playbooks {
				if !ours[m.Name] {
					continue // one of medic's built-in playbooks
				}
				ran[m.Name] = true
				matched[alertname(&evs[i])] = true
			}
		}
	}
	for _, pb := range pbs {
		all := len(pb.Triggers) > 0
		for _, tr := range pb.Triggers {
			for k := range tr {
				all = all && slices.Contains(exercised, k)
			}
		}
		if all && !ran[pb.Name] {
			t.Errorf("%s: playbook %s matches none of the recorded events", name, pb.Name)
		}
	}
}

func alertname(ev *event.Event) string {
	if n := ev.Labels["alertname"]; n != "" {
		return n
	}
	return ev.Title
}

// floor compares the table with the golden one: the same totals, and no
// fewer items converted (or converted with loss) than recorded.
func floor(t *testing.T, path string, rows []SummaryRow, table string) {
	t.Helper()
	if testkit.Updating() {
		testkit.Golden(t, path, []byte(table))
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s (go test -update writes it): %v", path, err)
	}
	want := parseTable(t, string(data))
	rose := false
	for _, r := range rows {
		w, ok := want[kindTitles[r.Kind]]
		switch {
		case !ok || w.Total() != r.Total():
			t.Errorf("%s: %d items, the golden table has %d: the corpus changed (go test -update)", r.Kind, r.Total(), w.Total())
		case r.Converted+r.Lossy < w.Converted+w.Lossy:
			t.Errorf("%s: %d carried over, fewer than the golden table's %d", r.Kind, r.Converted+r.Lossy, w.Converted+w.Lossy)
		case r.Converted < w.Converted:
			t.Errorf("%s: %d converted without loss, fewer than the golden table's %d", r.Kind, r.Converted, w.Converted)
		case r != w && r.Kind == w.Kind:
			rose = true
		}
	}
	if rose {
		t.Logf("the figures rose above %s; go test -update records them", path)
	}
}

func parseTable(t *testing.T, s string) map[string]SummaryRow {
	t.Helper()
	out := map[string]SummaryRow{}
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Scan() // the header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		n := make([]int, 4)
		for i := range n {
			v, err := strconv.Atoi(f[len(f)-4+i])
			if err != nil {
				t.Fatalf("golden table line %q: %v", sc.Text(), err)
			}
			n[i] = v
		}
		title := strings.Join(f[:len(f)-4], " ")
		kind := ""
		for k, v := range kindTitles {
			if v == title {
				kind = k
			}
		}
		out[title] = SummaryRow{Kind: kind, Converted: n[0], Lossy: n[1], NotConverted: n[2]}
	}
	return out
}
