// Package eval measures the investigation on recorded incidents: each case
// is a subject, the output each tool gives for it (mocked), and the facts a
// good answer states. HolmesGPT's test_investigate format is read as it is
// (testdata/holmes, Apache-2.0); medic's own cases are in
// testdata/cases.yaml.
//
// In CI the scripted model drives the loop (the case's tools are called and
// their results, with the facts in them, must come back to the model); with
// a real model (MEDIC_EVAL_MODEL) the facts are looked for in its answer and
// a table is printed per case.
package eval

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/agent"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/plugins"
	"github.com/medichq/medic/rag/llm"
)

// Case is one recorded incident.
type Case struct {
	Name    string            `yaml:"name"`
	Title   string            `yaml:"title"`
	Subject event.Subject     `yaml:"subject"`
	Labels  map[string]string `yaml:"labels"`
	// Mocks are the output of each medic tool for this incident; a tool
	// without one answers that it found nothing.
	Mocks map[string]string `yaml:"mocks"`
	// Facts a good answer states; each is a list of words that must all
	// appear in it (case-insensitive), so "OOMKilled, limit 256Mi" is
	// [oomkilled, 256Mi].
	Facts [][]string `yaml:"facts"`
	// Expected is the fact in words, for the table (HolmesGPT's
	// expected_output).
	Expected []string `yaml:"expected"`
	// Evidence is what the alert's playbooks collected before the
	// investigation (HolmesGPT's fetch_finding_by_id).
	Evidence string `yaml:"evidence"`
}

// LoadCases reads medic's own cases (a YAML list).
func LoadCases(path string) ([]Case, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cs []Case
	if err := yaml.Unmarshal(b, &cs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i, c := range cs {
		if c.Name == "" || len(c.Facts) == 0 || len(c.Mocks) == 0 {
			return nil, fmt.Errorf("%s: case %d (%q) needs a name, mocks and facts", path, i, c.Name)
		}
	}
	return cs, nil
}

// holmesTools maps HolmesGPT's tool names to medic's (by the kind of object
// where it matters).
func holmesTool(name string, params map[string]any) string {
	kind := strings.ToLower(fmt.Sprint(params["kind"], params["resource_type"]))
	switch name {
	case "kubectl_describe", "kubectl_get_by_name":
		if strings.Contains(kind, "pod") {
			return "pod_status"
		}
		return "workload_status"
	case "kubectl_logs", "kubectl_previous_logs", "fetch_pod_logs", "kubectl_logs_all_containers", "kubectl_previous_logs_all_containers":
		return "pod_logs"
	case "kubectl_events":
		return "object_events"
	case "kubectl_get_yaml":
		return "resource_yaml"
	case "kubectl_get_by_kind_in_namespace":
		return "list_pods"
	case "fetch_webpage":
		return "fetch_runbook"
	case "fetch_finding_by_id":
		return evidenceMock
	}
	return "" // medic has no such tool (configuration changes, Robusta findings)
}

// evidenceMock names the finding's own evidence among the mocks.
const evidenceMock = "(finding)"

// LoadHolmes reads a HolmesGPT test_investigate case folder: the subject
// from investigate_request.json, each tool mock file (a JSON line naming
// the tool, then its output after "stdout:"), and test_case.yaml's
// expected_output. facts are the words to look for, which HolmesGPT's
// format does not have (it asks a model to judge).
func LoadHolmes(dir string, facts [][]string) (Case, error) {
	c := Case{Name: "holmes/" + filepath.Base(dir), Mocks: map[string]string{}, Facts: facts}
	var req struct {
		Title   string `json:"title"`
		Subject struct {
			Name, Namespace, Kind string
			Container             *string
		} `json:"subject"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "investigate_request.json"))
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return c, fmt.Errorf("%s: %w", dir, err)
	}
	c.Title = req.Title
	kind := req.Subject.Kind
	if kind != "" {
		kind = strings.ToUpper(kind[:1]) + kind[1:]
	}
	c.Subject = event.Subject{Kind: kind, Namespace: req.Subject.Namespace, Name: req.Subject.Name}
	if req.Subject.Container != nil {
		c.Subject.Container = *req.Subject.Container
	}
	var tc struct {
		Expected any `yaml:"expected_output"`
	}
	if b, err = os.ReadFile(filepath.Join(dir, "test_case.yaml")); err != nil {
		return c, err
	}
	if err := yaml.Unmarshal(b, &tc); err != nil {
		return c, fmt.Errorf("%s: %w", dir, err)
	}
	switch e := tc.Expected.(type) {
	case string:
		c.Expected = []string{e}
	case []any:
		for _, x := range e {
			c.Expected = append(c.Expected, fmt.Sprint(x))
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return c, err
	}
	sort.Strings(files)
	for _, f := range files {
		tool, out, err := readHolmesMock(f)
		if err != nil {
			return c, err
		}
		switch {
		case tool == evidenceMock:
			c.Evidence += out
		case tool != "" && !strings.Contains(c.Mocks[tool], out):
			c.Mocks[tool] += out
		}
	}
	return c, nil
}

func readHolmesMock(path string) (tool, out string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	first, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", "", err
	}
	var head struct {
		Tool   string         `json:"tool_name"`
		Params map[string]any `json:"match_params"`
	}
	if json.Unmarshal([]byte(first), &head) != nil || head.Tool == "" {
		return "", "", nil // not a tool mock
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		return "", "", err
	}
	text := string(rest)
	if _, after, ok := strings.Cut(text, "stdout:\n"); ok {
		text = after
	}
	return holmesTool(head.Tool, head.Params), text, nil
}

// mockTool answers with the case's recorded output, under the spec of the
// medic tool of that name (so the model sees medic's real schemas).
type mockTool struct {
	spec llm.ToolSpec
	out  string
}

func (m mockTool) Spec() llm.ToolSpec { return m.spec }

func (m mockTool) Call(context.Context, json.RawMessage) (string, error) {
	if m.out == "" {
		return "Nothing found for this call.", nil
	}
	return m.out, nil
}

// Tools are medic's tools answering with c's mocks. The evaluation is of
// the tools medic ships, so their specifications come from its built-in
// actions.
func (c Case) Tools() ([]agent.Tool, error) {
	specs, err := agent.Specs(plugins.Builtin().Actions)
	if err != nil {
		return nil, err
	}
	out := make([]agent.Tool, len(specs))
	for i, s := range specs {
		out[i] = mockTool{spec: s, out: c.Mocks[s.Name]}
	}
	return out, nil
}

// Event is what the investigation starts from.
func (c Case) Event() event.Event {
	labels := map[string]string{"alertname": c.Title}
	for k, v := range c.Labels {
		labels[k] = v
	}
	return event.Event{ID: c.Name, Kind: event.KindPrometheusAlert, Title: c.Title, Subject: c.Subject, Labels: labels, Status: event.StatusFiring}
}

// Found reports which facts text states.
func (c Case) Found(text string) (found int, missing []string) {
	low := strings.ToLower(text)
	for _, fact := range c.Facts {
		ok := true
		for _, w := range fact {
			if !strings.Contains(low, strings.ToLower(w)) {
				ok = false
				break
			}
		}
		if ok {
			found++
		} else {
			missing = append(missing, strings.Join(fact, " + "))
		}
	}
	return found, missing
}

// Score is one case's result.
type Score struct {
	Case         string
	Facts, Found int
	Missing      []string
	Calls        int
	Stopped      string
}

// Run investigates c with model and scores the answer.
func Run(ctx context.Context, c Case, model agent.Model, modelName string, lim agent.Limits) (Score, agent.Result, error) {
	tools, err := c.Tools()
	if err != nil {
		return Score{}, agent.Result{}, err
	}
	ev := c.Event()
	f := event.NewFinding(ev, ev.ReceivedAt)
	f.Title = c.Title
	if c.Evidence != "" {
		f.Add(event.Enrichment{Title: "Finding", Blocks: []event.Block{event.MarkdownBlock(c.Evidence)}})
	}
	loop := agent.Loop{Model: model, ModelName: modelName, Tools: tools, Limits: lim}
	res, _, err := loop.Run(ctx, []llm.ToolMessage{
		{Role: "system", Content: agent.SystemPrompt("")},
		{Role: "user", Content: agent.FirstMessage(agent.Request{Finding: f})},
	}, agent.Events{})
	if err != nil {
		return Score{Case: c.Name}, res, err
	}
	found, missing := c.Found(res.Answer)
	return Score{Case: c.Name, Facts: len(c.Facts), Found: found, Missing: missing, Calls: len(res.Transcript.Steps), Stopped: res.Transcript.Stopped}, res, nil
}

// Table renders scores as a Markdown table with the total.
func Table(scores []Score) string {
	var b strings.Builder
	b.WriteString("| case | facts found | tool calls | missing |\n| --- | --- | --- | --- |\n")
	facts, found := 0, 0
	for _, s := range scores {
		fmt.Fprintf(&b, "| %s | %d/%d | %d | %s |\n", s.Case, s.Found, s.Facts, s.Calls, strings.Join(s.Missing, "; "))
		facts += s.Facts
		found += s.Found
	}
	fmt.Fprintf(&b, "| **total** | **%d/%d** | | |\n", found, facts)
	return b.String()
}
