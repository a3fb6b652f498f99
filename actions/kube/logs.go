package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

// LogsParams are the parameters of logs_enricher.
type LogsParams struct {
	// Container whose logs to show; empty: the event's container, else the
	// pod's failing container, else its first.
	Container string `yaml:"container"`
	// Previous shows the instance that crashed rather than the one running
	// now. When there is no previous instance the current logs are shown
	// and the source says so.
	Previous bool `yaml:"previous"`
	// TailLines is how many lines (after filtering) to show.
	TailLines int `yaml:"tail_lines"`
	// FilterRegex keeps only the lines it matches (RE2 syntax).
	FilterRegex string `yaml:"filter_regex"`
	// Redact lists extra patterns (RE2) whose matches are replaced by
	// [REDACTED]; a pattern's first capture group, when it has one, is the
	// part replaced, so "password=(\S+)" keeps "password=".
	Redact []string `yaml:"redact"`
	// RedactDefaults applies the built-in patterns (bearer tokens, passwords
	// and secrets in key=value or JSON form, AWS keys, private keys).
	RedactDefaults bool `yaml:"redact_defaults"`
}

// maxTailLines bounds what one finding carries.
const maxTailLines = 5000

// Validate checks bounds and compiles the patterns at load time.
func (p *LogsParams) Validate() error {
	if p.TailLines < 1 || p.TailLines > maxTailLines {
		return fmt.Errorf("tail_lines must be between 1 and %d, got %d", maxTailLines, p.TailLines)
	}
	_, err := p.options()
	return err
}

// options compiles the parameters into the pure processing options.
func (p *LogsParams) options() (LogOptions, error) {
	o := LogOptions{TailLines: p.TailLines}
	if p.FilterRegex != "" {
		re, err := regexp.Compile(p.FilterRegex)
		if err != nil {
			return o, fmt.Errorf("filter_regex: %w", err)
		}
		o.Filter = re
	}
	if p.RedactDefaults {
		o.Redact = append(o.Redact, DefaultRedactions()...)
	}
	for i, r := range p.Redact {
		re, err := regexp.Compile(r)
		if err != nil {
			return o, fmt.Errorf("redact[%d]: %w", i, err)
		}
		o.Redact = append(o.Redact, re)
	}
	return o, nil
}

func addLogs(r *actions.Registry) {
	actions.Add(r, "logs_enricher",
		"Add a container's logs (by default the failing container; previous: true for the instance that crashed), tailed, filtered and with secrets redacted.",
		func() *LogsParams { return &LogsParams{TailLines: 100, RedactDefaults: true} },
		func(p *LogsParams) (actions.Runner[kubeDeps], error) {
			opts, err := p.options()
			if err != nil {
				return nil, err
			}
			params := *p
			return runOnPod("logs_enricher", "Logs", func(ctx context.Context, kc kubernetes.Interface, rp *resolvedPod, f *event.Finding) error {
				container := firstNonEmpty(params.Container, SubjectOf(&f.Event).Container)
				lb, err := fetchLogs(ctx, kc, rp.Pod, container, params.Previous, opts)
				if err != nil {
					return err
				}
				blocks := rp.preface()
				if rp.Snapshot != "" {
					blocks = blocks[:0] // the logs come from the cluster, not from the snapshot
				}
				f.Add(event.Enrichment{
					Title:  "Logs",
					Source: "logs_enricher",
					Blocks: append(blocks, event.Block{Kind: event.BlockLog, Log: lb}),
				})
				return nil
			}), nil
		})
}

// fetchLogs reads a container's logs and processes them. When the previous
// instance is asked for but there is none, the current logs are read.
func fetchLogs(ctx context.Context, kc kubernetes.Interface, pod *corev1.Pod, container string, previous bool, opts LogOptions) (*event.LogBlock, error) {
	c, err := pickContainer(pod, container)
	if err != nil {
		return nil, err
	}
	noPrevious := false
	if previous && !hasPrevious(pod, c) {
		previous, noPrevious = false, true
	}
	// Lines are filtered and tailed here, so with a filter ask for more
	// than will be shown: the matching lines may be sparse.
	fetch := int64(opts.TailLines)
	if opts.Filter != nil {
		fetch = maxTailLines
	}
	text, err := readLogs(ctx, kc, pod, c, previous, fetch)
	if err != nil && previous && apierrors.IsBadRequest(err) {
		// "previous terminated container … not found": the status said
		// there was one, the kubelet disagrees (e.g. it was garbage
		// collected). The current logs are the next best thing.
		previous, noPrevious = false, true
		text, err = readLogs(ctx, kc, pod, c, false, fetch)
	}
	if err != nil {
		return nil, call{verb: "get", resource: "pods/log", namespace: pod.Namespace, name: pod.Name}.explain(err)
	}
	res := ProcessLogs(text, opts)
	// The API returned as many lines as asked for: older ones were cut.
	if strings.Count(strings.TrimRight(text, "\n"), "\n")+1 >= int(fetch) && text != "" {
		res.Truncated = true
	}
	src := ref(pod.Namespace, pod.Name) + " container " + c
	var notes []string
	switch {
	case previous:
		notes = append(notes, "previous")
	case noPrevious:
		notes = append(notes, "current: no previous instance")
	}
	if opts.Filter != nil {
		notes = append(notes, fmt.Sprintf("lines matching /%s/", opts.Filter))
	}
	if res.Redacted > 0 {
		notes = append(notes, fmt.Sprintf("%d redacted", res.Redacted))
	}
	if len(notes) > 0 {
		src += " (" + strings.Join(notes, ", ") + ")"
	}
	return &event.LogBlock{Source: src, Text: res.Text, Truncated: res.Truncated}, nil
}

// maxLogBytes bounds what is read from the API for one container.
const maxLogBytes = 4 << 20

func readLogs(ctx context.Context, kc kubernetes.Interface, pod *corev1.Pod, container string, previous bool, tail int64) (string, error) {
	limit := int64(maxLogBytes)
	req := kc.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{
		Container:  container,
		Previous:   previous,
		TailLines:  &tail,
		LimitBytes: &limit,
	})
	rc, err := req.Stream(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxLogBytes))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", err
	}
	return string(b), nil
}

// pickContainer returns want when the pod has it, else the container most
// worth reading: one that is waiting or restarting, else the first.
func pickContainer(pod *corev1.Pod, want string) (string, error) {
	all := make([]string, 0, len(pod.Spec.Containers)+len(pod.Spec.InitContainers))
	for _, c := range pod.Spec.InitContainers {
		all = append(all, c.Name)
	}
	for _, c := range pod.Spec.Containers {
		all = append(all, c.Name)
	}
	if want != "" {
		for _, n := range all {
			if n == want {
				return want, nil
			}
		}
		return "", problemf("pod %s has no container %q (it has %s)", ref(pod.Namespace, pod.Name), want, strings.Join(all, ", "))
	}
	if name := failingContainer(pod); name != "" {
		return name, nil
	}
	if len(pod.Spec.Containers) == 0 {
		return "", problemf("pod %s has no containers", ref(pod.Namespace, pod.Name))
	}
	return pod.Spec.Containers[0].Name, nil
}

// failingContainer is the container (init containers first) that is not
// ready and restarting or waiting, or "".
func failingContainer(pod *corev1.Pod) string {
	best, bestScore := "", 0
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range list {
			score := 0
			if !s.Ready && s.State.Terminated == nil {
				score++
			}
			if s.State.Waiting != nil && s.State.Waiting.Reason != "" && s.State.Waiting.Reason != "PodInitializing" {
				score += 2
			}
			if s.LastTerminationState.Terminated != nil {
				score += 2
			}
			if s.State.Terminated != nil && s.State.Terminated.ExitCode != 0 {
				score += 2
			}
			if score > bestScore {
				best, bestScore = s.Name, score
			}
		}
	}
	return best
}

// hasPrevious says whether the container has a terminated earlier instance.
func hasPrevious(pod *corev1.Pod, container string) bool {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range list {
			if s.Name == container {
				return s.RestartCount > 0 || s.LastTerminationState.Terminated != nil
			}
		}
	}
	// Without a status, let the kubelet decide.
	return true
}

// LogOptions shape ProcessLogs.
type LogOptions struct {
	// TailLines keeps the last lines (after filtering); 0 keeps all.
	TailLines int
	// Filter keeps only matching lines.
	Filter *regexp.Regexp
	// Redact replaces matches (or their first group) with [REDACTED].
	Redact []*regexp.Regexp
}

// LogResult is processed log text.
type LogResult struct {
	Text string
	// Truncated says earlier lines were dropped by the tail.
	Truncated bool
	// Kept and Dropped count lines kept, and dropped by filter or tail.
	Kept, Dropped int
	// Redacted counts replaced matches.
	Redacted int
}

// Redaction replaces the secret.
const Redaction = "[REDACTED]"

// DefaultRedactions are the patterns applied unless redact_defaults is off:
// what commonly leaks into application logs.
func DefaultRedactions() []*regexp.Regexp {
	return []*regexp.Regexp{
		// Authorization: Bearer xyz, Basic xyz
		regexp.MustCompile(`(?i)\b(?:bearer|basic)\s+([A-Za-z0-9\-._~+/]{8,}=*)`),
		// password=…, "secret": "…", api_key: …, token=…
		regexp.MustCompile(`(?i)(?:passw(?:or)?d|passwd|pwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|access[_-]?token|refresh[_-]?token|client[_-]?secret|token)["']?\s*[:=]\s*["']?([^\s"',;&]+)`),
		// user:password@host in URLs
		regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:([^\s@/]+)@`),
		// AWS access key IDs
		regexp.MustCompile(`\b((?:AKIA|ASIA)[0-9A-Z]{16})\b`),
		// PEM private keys (one line of one)
		regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`),
	}
}

// ProcessLogs filters, tails and redacts log text. It is pure so the rules
// can be tested on real log text without a cluster.
func ProcessLogs(text string, o LogOptions) LogResult {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		return LogResult{}
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	total := len(lines)
	if o.Filter != nil {
		kept := lines[:0]
		for _, l := range lines {
			if o.Filter.MatchString(l) {
				kept = append(kept, l)
			}
		}
		lines = kept
	}
	res := LogResult{}
	if o.TailLines > 0 && len(lines) > o.TailLines {
		lines = lines[len(lines)-o.TailLines:]
		res.Truncated = true
	}
	for i, l := range lines {
		for _, re := range o.Redact {
			l = redact(re, l, &res.Redacted)
		}
		lines[i] = l
	}
	res.Kept = len(lines)
	res.Dropped = total - len(lines)
	if len(lines) > 0 {
		res.Text = strings.Join(lines, "\n") + "\n"
	}
	return res
}

// redact replaces each match of re in s, or its first capture group when
// the pattern has one.
func redact(re *regexp.Regexp, s string, n *int) string {
	idx := re.FindAllStringSubmatchIndex(s, -1)
	if idx == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range idx {
		start, end := m[0], m[1]
		if len(m) >= 4 && m[2] >= 0 {
			start, end = m[2], m[3]
		}
		if start < last {
			continue
		}
		b.WriteString(s[last:start])
		b.WriteString(Redaction)
		last = end
		*n++
	}
	b.WriteString(s[last:])
	return b.String()
}
