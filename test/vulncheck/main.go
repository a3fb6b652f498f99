// Command vulncheck runs govulncheck over the module against the offline
// database test/tools/build-vulndb.sh builds and fails when medic calls a
// vulnerable function, unless test/vulncheck/exceptions.yaml accepts that
// vulnerability for now (with a reason and a review date). `make vulncheck`
// runs it; so does make test.
//
// govulncheck has no way to accept a finding, and running it bare would
// either fail make test on every advisory for a dependency that cannot move
// yet or be left out of make test: this keeps it in, with every exception
// written down, dated and removed once it no longer matches.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		os.Exit(1)
	}
}

// Exception accepts one vulnerability for now.
type Exception struct {
	ID       string `yaml:"id"`
	Module   string `yaml:"module"`
	Reason   string `yaml:"reason"`
	ReviewBy string `yaml:"review_by"`
}

// Finding is the part of govulncheck's JSON "finding" message used here.
type Finding struct {
	OSV          string  `json:"osv"`
	FixedVersion string  `json:"fixed_version"`
	Trace        []Frame `json:"trace"`
}

// Frame is one step of a finding's trace; the first is the vulnerable symbol.
type Frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("vulncheck", flag.ContinueOnError)
	govulncheck := fs.String("govulncheck", "", "the govulncheck binary")
	db := fs.String("db", "", "the vulnerability database URL (file://…)")
	exceptionsFile := fs.String("exceptions", "test/vulncheck/exceptions.yaml", "accepted vulnerabilities")
	fromJSON := fs.String("json", "", "read govulncheck -format json output from this file instead of running it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	exceptions, err := loadExceptions(*exceptionsFile)
	if err != nil {
		return err
	}
	var stream []byte
	if *fromJSON != "" {
		stream, err = os.ReadFile(*fromJSON)
	} else {
		stream, err = runGovulncheck(*govulncheck, *db, fs.Args())
	}
	if err != nil {
		return err
	}
	called, err := calledFindings(stream)
	if err != nil {
		return err
	}
	problems := Judge(called, exceptions, time.Now())
	report(out, called, exceptions)
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n  "))
	}
	return nil
}

func loadExceptions(path string) ([]Exception, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the exceptions: %w", err)
	}
	var doc struct {
		Exceptions []Exception `yaml:"exceptions"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i, e := range doc.Exceptions {
		if e.ID == "" || strings.TrimSpace(e.Reason) == "" {
			return nil, fmt.Errorf("%s: exceptions[%d]: id and reason are required", path, i)
		}
		if _, err := time.Parse(time.DateOnly, e.ReviewBy); err != nil {
			return nil, fmt.Errorf("%s: exceptions[%d] (%s): review_by %q is not a date (YYYY-MM-DD)", path, i, e.ID, e.ReviewBy)
		}
	}
	return doc.Exceptions, nil
}

// runGovulncheck returns govulncheck's JSON stream. Its exit status is not
// used: with -format json it exits 0 whatever it finds.
func runGovulncheck(bin, db string, pkgs []string) ([]byte, error) {
	if bin == "" || db == "" {
		return nil, errors.New("-govulncheck and -db are required (make vulncheck passes them)")
	}
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}
	cmd := exec.Command(bin, append([]string{"-db", db, "-format", "json"}, pkgs...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stream, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("running govulncheck: %w\n%s", err, stderr.String())
	}
	return stream, nil
}

// calledFindings returns, per OSV ID, the findings whose trace reaches a
// vulnerable function (symbol level); imported-but-not-called ones are left out.
func calledFindings(stream []byte) (map[string][]Finding, error) {
	dec := json.NewDecoder(bytes.NewReader(stream))
	called := map[string][]Finding{}
	for {
		var msg struct {
			Finding *Finding `json:"finding"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading govulncheck's JSON: %w", err)
		}
		f := msg.Finding
		if f == nil || len(f.Trace) == 0 || f.Trace[0].Function == "" {
			continue
		}
		called[f.OSV] = append(called[f.OSV], *f)
	}
	return called, nil
}

// Judge returns what fails the check: a called vulnerability no exception
// accepts, an exception past its review date, an exception that matches nothing.
func Judge(called map[string][]Finding, exceptions []Exception, now time.Time) []string {
	var problems []string
	accepted := map[string]Exception{}
	for _, e := range exceptions {
		accepted[e.ID] = e
		if _, ok := called[e.ID]; !ok {
			problems = append(problems, fmt.Sprintf("exception %s matches no finding any more: remove it from the exceptions file", e.ID))
		}
		if due, _ := time.Parse(time.DateOnly, e.ReviewBy); now.After(due.Add(24 * time.Hour)) {
			problems = append(problems, fmt.Sprintf("exception %s was to be reviewed by %s: upgrade %s or renew the exception with a reason", e.ID, e.ReviewBy, e.Module))
		}
	}
	for _, id := range sortedKeys(called) {
		e, ok := accepted[id]
		if !ok {
			f := called[id][0]
			problems = append(problems, fmt.Sprintf("%s: medic calls %s in %s@%s (fixed in %s)", id, symbol(f.Trace[0]), f.Trace[0].Module, f.Trace[0].Version, orNone(f.FixedVersion)))
			continue
		}
		if m := called[id][0].Trace[0].Module; e.Module != "" && e.Module != m {
			problems = append(problems, fmt.Sprintf("exception %s names module %s, the finding is in %s", id, e.Module, m))
		}
	}
	return problems
}

func report(out io.Writer, called map[string][]Finding, exceptions []Exception) {
	accepted := map[string]bool{}
	for _, e := range exceptions {
		accepted[e.ID] = true
	}
	if len(called) == 0 {
		fmt.Fprintln(out, "vulncheck: medic calls no known vulnerable function")
		return
	}
	for _, id := range sortedKeys(called) {
		f := called[id][0]
		state := "NOT ACCEPTED"
		if accepted[id] {
			state = "accepted (test/vulncheck/exceptions.yaml)"
		}
		fmt.Fprintf(out, "vulncheck: %s %s@%s, fixed in %s, %d call paths, e.g. %s: %s\n",
			id, f.Trace[0].Module, f.Trace[0].Version, orNone(f.FixedVersion), len(called[id]), path(f.Trace), state)
	}
}

func path(trace []Frame) string {
	parts := make([]string, 0, len(trace))
	for i := len(trace) - 1; i >= 0; i-- {
		parts = append(parts, symbol(trace[i]))
	}
	return strings.Join(parts, " → ")
}

func symbol(f Frame) string {
	name := f.Function
	if f.Receiver != "" {
		name = strings.TrimPrefix(f.Receiver, "*") + "." + name
	}
	return f.Package + "." + name
}

func orNone(v string) string {
	if v == "" {
		return "no release yet"
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
