package playbooks

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/actions/ai"
	"github.com/medichq/medic/actions/kube"
	"github.com/medichq/medic/event"
	_ "github.com/medichq/medic/triggers/prometheus" // on_prometheus_alert
)

// testPlugins is what the tests' playbooks name: package actions' own
// actions and the built-in playbooks' (actions/kube, ask_ai).
var testPlugins = func() Plugins {
	r := actions.NewRegistry()
	actions.Register(r)
	ai.Register(r)
	kube.Register(r)
	return Plugins{Actions: r}
}()

func alert(name string, status event.Status, labels map[string]string) *event.Event {
	l := map[string]string{"alertname": name}
	for k, v := range labels {
		l[k] = v
	}
	starts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	return &event.Event{
		ID:       event.NewID("test", name, status, starts),
		Kind:     event.KindPrometheusAlert,
		Status:   status,
		Severity: event.SeverityWarning,
		Title:    name,
		Labels:   l,
		Subject:  event.Subject{Namespace: l["namespace"], Name: l["pod"]},
		StartsAt: starts,
	}
}

func build(t *testing.T, files map[string]string, opts Options) (*Set, error) {
	t.Helper()
	var fs []File
	for p, d := range files {
		fs = append(fs, File{Path: p, Data: []byte(d)})
	}
	return Build(fs, opts)
}

func mustBuild(t *testing.T, files map[string]string) *Set {
	t.Helper()
	set, err := build(t, files, Options{Plugins: testPlugins})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return set
}

func TestValidationErrorsNameFileAndLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string // each "file:line: substring"
	}{
		{
			name: "unknown action",
			yaml: `- name: a
  triggers:
    - on_prometheus_alert: {alert_name: X}
  actions:
    - no_such_action: {}
`,
			want: []string{`pb.yaml:5: unknown action "no_such_action"`},
		},
		{
			name: "unknown trigger",
			yaml: `- name: a
  triggers:
    - on_prometheus_alrt: {}
  actions:
    - default_enricher: {}
`,
			want: []string{`pb.yaml:3: unknown trigger "on_prometheus_alrt"`},
		},
		{
			name: "unknown trigger parameter with suggestion",
			yaml: `- name: a
  triggers:
    - on_prometheus_alert:
        alert_name: X
        namespace_prefx: prod-
  actions:
    - default_enricher: {}
`,
			want: []string{`pb.yaml:5: unknown parameter "namespace_prefx" (did you mean "namespace_prefix"?)`},
		},
		{
			name: "unknown action parameter",
			yaml: `- name: a
  triggers:
    - on_prometheus_alert: {}
  actions:
    - create_finding:
        title: x
        colour: red
`,
			want: []string{`pb.yaml:7: unknown parameter "colour"`},
		},
		{
			name: "bad template",
			yaml: `- name: a
  triggers:
    - on_prometheus_alert: {}
  actions:
    - create_finding:
        title: "{{ .Labels.pod"
`,
			want: []string{`pb.yaml:6: template title`},
		},
		{
			name: "wrong parameter type",
			yaml: `- name: a
  triggers:
    - on_prometheus_alert: {}
  actions:
    - create_finding:
        title: [not, a, string]
`,
			want: []string{`pb.yaml:6: cannot use`},
		},
		{
			name: "unknown playbook key and missing actions",
			yaml: `- name: a
  triggers:
    - on_prometheus_alert: {}
  action:
    - default_enricher: {}
`,
			want: []string{`pb.yaml:1: playbook "a" has no actions`, `pb.yaml:4: unknown playbook key "action"`},
		},
		{
			name: "parameters indented as siblings",
			yaml: `- name: a
  triggers:
    - on_prometheus_alert:
      alert_name: X
  actions:
    - default_enricher: {}
`,
			want: []string{`pb.yaml:4: each trigger is a mapping with exactly one key`},
		},
		{
			name: "invalid YAML",
			yaml: "- name: a\n  triggers: [\n",
			want: []string{`pb.yaml:2: invalid YAML`},
		},
		{
			name: "not a list",
			yaml: "name: a\n",
			want: []string{`pb.yaml:1: unknown top-level key "name"`},
		},
		{
			name: "invalid regex in scope",
			yaml: `- name: a
  triggers:
    - on_prometheus_alert:
        scope:
          include:
            - labels: {team: "(unclosed"}
  actions:
    - default_enricher: {}
`,
			want: []string{`pb.yaml:6: invalid regular expression`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := build(t, map[string]string{"pb.yaml": tt.yaml}, Options{Plugins: testPlugins})
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want Errors, got %v", err)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("errors do not contain %q:\n%v", want, err)
				}
			}
			for _, e := range errs {
				if e.File != "pb.yaml" || e.Line == 0 {
					t.Errorf("error without file and line: %+v", e)
				}
			}
		})
	}
}

func TestAllErrorsAcrossFilesAreReported(t *testing.T) {
	t.Parallel()
	_, err := build(t, map[string]string{
		"a.yaml": "- triggers: [{on_prometheus_alert: {}}]\n  actions: [{bogus: {}}]\n",
		"b.yaml": "- triggers: [{on_prometheus_alert: {status: sometimes}}]\n  actions: [default_enricher]\n",
	}, Options{Plugins: testPlugins})
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("want 2 errors, got %v", err)
	}
	if errs[0].File != "a.yaml" || errs[1].File != "b.yaml" {
		t.Fatalf("errors not sorted by file: %v", err)
	}
}

func TestDuplicateNamesAndUnknownSinks(t *testing.T) {
	t.Parallel()
	_, err := build(t, map[string]string{
		"a.yaml": "- name: dup\n  triggers: [on_prometheus_alert]\n  actions: [default_enricher]\n",
		"b.yaml": "- name: dup\n  triggers: [on_prometheus_alert]\n  actions: [default_enricher]\n  sinks: [slack]\n",
	}, Options{Plugins: testPlugins, KnownSinks: []string{"file"}})
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{`b.yaml:1: playbook name "dup" is already used at a.yaml:1`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	_, err = build(t, map[string]string{
		"b.yaml": "- name: x\n  triggers: [on_prometheus_alert]\n  actions: [default_enricher]\n  sinks: [slack]\n",
	}, Options{Plugins: testPlugins, KnownSinks: []string{"file"}})
	if err == nil || !strings.Contains(err.Error(), `names sink "slack", which is not configured`) {
		t.Fatalf("want unknown sink error, got %v", err)
	}
}

func TestBuiltinPlaybooksLoadAndCanBeReplacedOrDisabled(t *testing.T) {
	t.Parallel()
	builtin, err := BuiltinFiles()
	if err != nil {
		t.Fatal(err)
	}
	set, err := Build(builtin, Options{Plugins: testPlugins})
	if err != nil {
		t.Fatalf("built-in playbooks do not load: %v", err)
	}
	if !strings.Contains(strings.Join(set.Names(), ","), "builtin-alert-enricher") {
		t.Fatalf("default alert enricher missing: %v", set.Names())
	}

	user := File{Path: "mine.yaml", Data: []byte("- name: builtin-alert-enricher\n  triggers: [on_prometheus_alert]\n  actions: [{template_enricher: {template: mine}}]\n")}
	set, err = Build(append(builtin, user), Options{Plugins: testPlugins})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range set.Playbooks {
		if p.Name == "builtin-alert-enricher" && p.Builtin {
			t.Fatal("built-in not replaced by the user playbook of the same name")
		}
	}

	set, err = Build(builtin, Options{Plugins: testPlugins, Disabled: []string{"builtin-alert-enricher"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Playbooks) != len(builtinNames(t))-1 {
		t.Fatalf("disabled playbook still present: %v", set.Names())
	}
	if _, err := Build(builtin, Options{Plugins: testPlugins, Disabled: []string{"no-such"}}); err == nil {
		t.Fatal("disabling an unknown playbook must be an error (it is usually a typo)")
	}
}

func builtinNames(t *testing.T) []string {
	files, _ := BuiltinFiles()
	set, err := Build(files, Options{Plugins: testPlugins})
	if err != nil {
		t.Fatal(err)
	}
	return set.Names()
}

func newEngine(t *testing.T, set *Set) *Engine {
	t.Helper()
	store, err := NewStore(func(context.Context) ([]File, error) { return nil, nil }, Options{Plugins: testPlugins}, discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	store.current.Store(set)
	e, err := NewEngine(store, &actions.Env{Logger: discard(), ClusterName: "prod-eu"}, time.Second, discard(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestEngineMatchingOrderStopAndSinks(t *testing.T) {
	set := mustBuild(t, map[string]string{"pb.yaml": `
- name: crashloop
  triggers:
    - on_prometheus_alert: {alert_name: KubePodCrashLooping, namespace_prefix: shop}
  actions:
    - create_finding:
        title: "{{ .Labels.pod }} in {{ .Labels.namespace }} is crash looping on {{ .Cluster }}"
        severity: high
    - template_enricher: {title: Owner, template: "team {{ .Labels.team | default \"unknown\" }}"}
  sinks: [oncall]
- name: stop-here
  triggers:
    - on_prometheus_alert: {alert_name: KubePodCrashLooping}
  actions:
    - template_enricher: {template: second}
  sinks: [audit, oncall]
  stop: true
- name: never
  triggers:
    - on_prometheus_alert: {}
  actions:
    - template_enricher: {template: third}
`})
	e := newEngine(t, set)
	res, err := e.Run(context.Background(), alert("KubePodCrashLooping", event.StatusFiring, map[string]string{"namespace": "shop", "pod": "cart-7d9"}))
	if err != nil {
		t.Fatal(err)
	}
	f := res.Finding
	if f == nil {
		t.Fatal("no finding")
	}
	if f.Title != "cart-7d9 in shop is crash looping on prod-eu" || f.Severity != event.SeverityHigh {
		t.Errorf("title %q severity %q", f.Title, f.Severity)
	}
	if got := strings.Join(f.Playbooks, ","); got != "crashloop,stop-here" {
		t.Errorf("playbooks ran: %s (stop not honoured?)", got)
	}
	if len(f.Enrichments) != 2 || f.Enrichments[0].Blocks[0].Markdown != "team unknown" || f.Enrichments[1].Blocks[0].Markdown != "second" {
		t.Errorf("enrichments: %+v", f.Enrichments)
	}
	if got := strings.Join(res.Sinks, ","); got != "oncall,audit" {
		t.Errorf("sinks %s", got)
	}
	if f.PlaybookSet != set.Version || f.ID != f.Event.ID {
		t.Errorf("finding metadata: set %q id %q", f.PlaybookSet, f.ID)
	}

	// A resolved alert matches neither (status defaults to firing) but the catch-all.
	res, err = e.Run(context.Background(), alert("KubePodCrashLooping", event.StatusResolved, map[string]string{"namespace": "shop"}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Finding != nil {
		t.Errorf("resolved alert matched firing-only playbooks: %v", res.Finding.Playbooks)
	}
}

type failingAction struct{}

func (failingAction) Run(context.Context, *actions.Env, *event.Finding) error {
	return errors.New("forbidden: cannot get pods/log")
}

func TestActionFailureBecomesANoteNotALostFinding(t *testing.T) {
	set := mustBuild(t, map[string]string{"pb.yaml": "- name: a\n  triggers: [on_prometheus_alert]\n  actions: [{template_enricher: {template: ok}}]\n"})
	set.Playbooks[0].Actions = append([]Action{{Name: "logs", Action: failingAction{}}}, set.Playbooks[0].Actions...)
	res, err := newEngine(t, set).Run(context.Background(), alert("X", event.StatusFiring, nil))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Finding.Enrichments); n != 2 {
		t.Fatalf("want note + enrichment, got %d", n)
	}
	if !strings.Contains(res.Finding.Enrichments[0].Blocks[0].Markdown, "forbidden: cannot get pods/log") {
		t.Errorf("note does not say why: %+v", res.Finding.Enrichments[0])
	}
}

func TestStoreKeepsLastGoodSetOnBadReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pb.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("- name: good\n  triggers: [on_prometheus_alert]\n  actions: [default_enricher]\n")
	store, err := NewStore(func(context.Context) ([]File, error) { return ReadDir(dir) }, Options{Plugins: testPlugins}, discard(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if changed, err := store.Reload(ctx); err != nil || !changed {
		t.Fatalf("first load: changed=%v err=%v", changed, err)
	}
	good := store.Current()

	write("- name: good\n  triggers: [on_prometheus_alert]\n  actions: [defualt_enricher]\n")
	changed, err := store.Reload(ctx)
	if err == nil || changed {
		t.Fatalf("bad reload accepted: changed=%v err=%v", changed, err)
	}
	if !strings.Contains(err.Error(), "pb.yaml:3: unknown action \"defualt_enricher\"") {
		t.Errorf("error does not name file and line: %v", err)
	}
	if store.Current() != good {
		t.Fatal("running set replaced by a rejected one")
	}
	if store.LastError() == nil {
		t.Error("LastError lost the rejection")
	}

	write("- name: fixed\n  triggers: [on_prometheus_alert]\n  actions: [default_enricher]\n")
	if changed, err := store.Reload(ctx); err != nil || !changed {
		t.Fatalf("fix not applied: changed=%v err=%v", changed, err)
	}
	if store.Current().Names()[0] != "fixed" || store.LastError() != nil {
		t.Fatalf("set after fix: %v, last error %v", store.Current().Names(), store.LastError())
	}
	if changed, _ := store.Reload(ctx); changed {
		t.Error("unchanged content reported as changed")
	}
}

// TestReloadDuringEventsIsAtomic runs events while the set flips between two
// versions; every finding must come wholly from one of them.
func TestReloadDuringEventsIsAtomic(t *testing.T) {
	a := mustBuild(t, map[string]string{"a.yaml": "- name: a1\n  triggers: [on_prometheus_alert]\n  actions: [{template_enricher: {template: A}}]\n- name: a2\n  triggers: [on_prometheus_alert]\n  actions: [{template_enricher: {template: A}}]\n"})
	b := mustBuild(t, map[string]string{"b.yaml": "- name: b1\n  triggers: [on_prometheus_alert]\n  actions: [{template_enricher: {template: B}}]\n- name: b2\n  triggers: [on_prometheus_alert]\n  actions: [{template_enricher: {template: B}}]\n"})
	e := newEngine(t, a)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				e.store.current.Store(b)
			} else {
				e.store.current.Store(a)
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for range 500 {
				res, err := e.Run(context.Background(), alert("X", event.StatusFiring, nil))
				if err != nil {
					t.Error(err)
					return
				}
				f := res.Finding
				first := f.Enrichments[0].Blocks[0].Markdown
				for _, en := range f.Enrichments {
					if en.Blocks[0].Markdown != first {
						t.Errorf("finding mixes sets: %v", f.Playbooks)
						return
					}
				}
				if (first == "A") != (f.PlaybookSet == a.Version) {
					t.Errorf("finding says set %s but ran %s", f.PlaybookSet, first)
				}
			}
		})
	}
	time.Sleep(10 * time.Millisecond)
	close(stop)
	wg.Wait()
}

func FuzzLoadPlaybooks(f *testing.F) {
	f.Add([]byte("- name: a\n  triggers: [on_prometheus_alert]\n  actions: [default_enricher]\n"))
	f.Add([]byte("- triggers:\n    - on_prometheus_alert: {alert_name: X, status: all, scope: {include: [{labels: {a: b.*}}]}}\n  actions:\n    - create_finding: {title: '{{ .Labels.x }}'}\n  stop: true\n"))
	f.Add([]byte("playbooks: [{triggers: [x], actions: [y]}]"))
	f.Add([]byte("- &a {triggers: *a}"))
	f.Add([]byte("\t- :"))
	if builtin, err := BuiltinFiles(); err == nil {
		for _, b := range builtin {
			f.Add(b.Data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Build([]File{{Path: "fuzz.yaml", Data: data}}, Options{Plugins: testPlugins})
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error is not a non-empty Errors: %v", err)
			}
			for _, e := range errs {
				if e.File != "fuzz.yaml" && e.File != "config" {
					t.Fatalf("error names file %q", e.File)
				}
			}
			return
		}
		for _, p := range set.Playbooks {
			if p.Name == "" || len(p.Triggers) == 0 || len(p.Actions) == 0 {
				t.Fatalf("accepted an incomplete playbook: %+v", p)
			}
		}
	})
}
