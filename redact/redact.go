// Package redact removes secrets from what medic sends anywhere: every
// finding before a sink renders it or the finding page shows it, and every
// prompt before it goes to a model. One Redactor, built from the
// configuration (redaction.*), serves both, so chat, files, webhooks, the
// page and the model see the same text.
//
// It replaces, with Placeholder: environment variable values (except
// names on an allow-list), Secret data, the
// kubectl.kubernetes.io/last-applied-configuration annotation (a second
// copy of the object, env values included), the token shapes of the big
// providers, bearer and basic credentials, passwords in URLs and
// key=value secrets, and matches of the configured patterns.
package redact

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Placeholder replaces each secret.
const Placeholder = "[REDACTED]"

// Kinds of what is removed besides the token rules.
const (
	KindEnv         = "env value"
	KindLastApplied = "last-applied-configuration"
	KindSecretData  = "secret data"
	KindCustom      = "custom pattern"
)

// LastAppliedAnnotation is kubectl's copy of the applied object.
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// DefaultEnvAllow are variable names whose values say how a program runs,
// not what it may access; they stay readable in findings.
var DefaultEnvAllow = []string{
	"ENVIRONMENT", "GOGC", "GOMAXPROCS", "GOMEMLIMIT", "HOME", "HOSTNAME", "LANG", "LC_ALL",
	"LOG_FORMAT", "LOG_LEVEL", "NODE_ENV", "PATH", "PORT", "TZ",
}

// Options configure a Redactor.
type Options struct {
	// Patterns are extra Go regular expressions; when one has a capturing
	// group only the first group is replaced, else the whole match.
	Patterns []string
	// EnvAllow names the environment variables whose values are kept;
	// nil means DefaultEnvAllow.
	EnvAllow []string
}

// Redactor removes secrets from text, JSON and findings.
type Redactor struct {
	rules    []rule
	pre      *prefilter
	envAllow map[string]bool
}

type rule struct {
	name string
	re   *regexp.Regexp
	need []string // literals one of which a match needs; none: always run re
	fold bool     // need is lower case, compared with the text in lower case
	all  []string // literals every match holds
	// needBit and allBits are the rule's bits in the prefilter's scan
	// (newPrefilter).
	needBit, allBits uint64
}

// builtinRules cover what logs, events and annotations leak most: bearer and
// basic credentials, key=value secrets, connection strings, private keys
// and the token formats of the big providers. Order matters: the broad
// key=value rule runs after the specific formats so it does not split them.
var builtinRules = []struct {
	name, expr string
	// need lists literals of which a text must hold one for expr to be able
	// to match (lower case when fold): a substring search skips the regular
	// expression for most texts, which is most of redaction's cost.
	need []string
	fold bool
	// all lists literals every match holds (checked first, as is).
	all []string
}{
	{"private key", `(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----`, []string{"PRIVATE KEY"}, false, nil},
	{"bearer token", `(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{8,}=*)`, []string{"bearer"}, true, nil},
	{"basic auth", `(?i)\bbasic\s+([A-Za-z0-9+/]{8,}={0,2})`, []string{"basic"}, true, nil},
	{"connection string", `(?i)\b[a-z][a-z0-9+.\-]{1,30}://[^\s:/@"'<>]*:([^\s@/"'<>]+)@`, []string{"://"}, false, []string{"@"}},
	{"jwt", `\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}`, []string{"eyJ"}, false, nil},
	{"aws access key", `\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b`, []string{"AKIA", "ASIA", "AGPA", "AIDA", "AROA"}, false, nil},
	{"github token", `\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b`, []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"}, false, nil},
	{"gitlab token", `\bglpat-[A-Za-z0-9_\-]{20,}\b`, []string{"glpat-"}, false, nil},
	{"slack token", `\bxox[abprs]-[A-Za-z0-9\-]{10,}\b`, []string{"xox"}, false, nil},
	{"slack webhook", `https://hooks\.slack\.com/services/[A-Za-z0-9/_\-]+`, []string{"hooks.slack.com"}, false, nil},
	{"openai key", `\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}\b`, []string{"sk-"}, false, nil},
	{"google api key", `\bAIza[0-9A-Za-z_\-]{35}\b`, []string{"AIza"}, false, nil},
	{"stripe key", `\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b`, []string{"k_live_", "k_test_"}, false, nil},
	{"azure key", `(?i)\b(?:AccountKey|SharedAccessKey|SharedAccessSignature)=([^;\s"']+)`, []string{"accountkey=", "sharedaccesskey=", "sharedaccesssignature="}, true, nil},
	{"password in connection string", `(?i)(?:^|[;\s"'])(?:password|pwd)=([^;\s"']+)`, []string{"password=", "pwd="}, true, nil},
	{"secret value", `(?i)\b[A-Za-z0-9_.\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key|credentials?|authorization)[A-Za-z0-9_.\-]*["']?\s*[:=]\s*["']?([^\s"',;}{]{3,})`,
		[]string{"password", "passwd", "pwd", "secret", "token", "apikey", "api_key", "api-key", "accesskey", "access_key", "access-key",
			"privatekey", "private_key", "private-key", "credential", "authorization"}, true, nil},
}

var compiledBuiltins = func() []rule {
	rs := make([]rule, len(builtinRules))
	for i, b := range builtinRules {
		rs[i] = rule{name: b.name, re: regexp.MustCompile(b.expr), need: b.need, fold: b.fold, all: b.all}
	}
	return rs
}()

// New builds the built-in rules plus o's.
func New(o Options) (*Redactor, error) {
	r := &Redactor{rules: slices.Clone(compiledBuiltins), envAllow: map[string]bool{}}
	for i, p := range o.Patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("redact pattern %d %q: %w", i, p, err)
		}
		r.rules = append(r.rules, rule{name: KindCustom, re: re})
	}
	r.pre = newPrefilter(r.rules)
	allow := o.EnvAllow
	if allow == nil {
		allow = DefaultEnvAllow
	}
	for _, n := range allow {
		r.envAllow[n] = true
	}
	return r, nil
}

// Default is the built-in rules with DefaultEnvAllow.
func Default() *Redactor { return defaultRedactor }

var defaultRedactor, _ = New(Options{})

// Redaction counts what was removed, by kind.
type Redaction map[string]int

// Total is the number of secrets removed.
func (r Redaction) Total() int {
	n := 0
	for _, c := range r {
		n += c
	}
	return n
}

// String says what was redacted: "3 secrets redacted (2 bearer token, 1 password)".
func (r Redaction) String() string {
	return r.say("secret", "secrets")
}

// Note is the line findings carry: "3 values redacted (1 connection string, 2 env value)".
func (r Redaction) Note() string {
	return r.say("value", "values")
}

func (r Redaction) say(one, many string) string {
	n := r.Total()
	if n == 0 {
		return "nothing redacted"
	}
	kinds := make([]string, 0, len(r))
	for k := range r {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%d %s", r[k], k)
	}
	word := many
	if n == 1 {
		word = one
	}
	return fmt.Sprintf("%d %s redacted (%s)", n, word, strings.Join(parts, ", "))
}

// Add merges o into r.
func (r Redaction) Add(o Redaction) {
	for k, v := range o {
		r[k] += v
	}
}

// Redact returns text with every secret replaced by Placeholder, and what it
// removed. A nil Redactor is Default().
func (r *Redactor) Redact(text string) (string, Redaction) {
	found := Redaction{}
	return r.redact(text, found), found
}

func (r *Redactor) redact(text string, found Redaction) string {
	if r == nil {
		r = defaultRedactor
	}
	if text == "" {
		return text
	}
	text = r.redactEnvText(text, found)
	text = redactLastAppliedText(text, found)
	seen := r.pre.scan(text)
	for i := range r.rules {
		if rl := &r.rules[i]; seen.allows(rl) {
			text = replace(rl, text, found)
		}
	}
	return text
}

func (r *Redactor) envAllowed(name string) bool {
	if r == nil {
		r = defaultRedactor
	}
	return r.envAllow[name]
}

// isMask reports whether a matched value is no secret: already redacted,
// masked by its owner, or a scheme word.
func isMask(secret string) bool {
	return secret == "" || strings.Contains(secret, Placeholder) || strings.Trim(secret, "[]*xX\"' ") == "" ||
		strings.EqualFold(secret, "bearer") || strings.EqualFold(secret, "basic")
}

func replace(rl *rule, text string, found Redaction) string {
	locs := rl.re.FindAllStringSubmatchIndex(text, -1)
	if len(locs) == 0 {
		return text
	}
	var b strings.Builder
	last := 0
	for _, loc := range locs {
		start, end := loc[0], loc[1]
		if len(loc) >= 4 && loc[2] >= 0 {
			start, end = loc[2], loc[3]
		}
		if start < last || isMask(text[start:end]) {
			continue
		}
		b.WriteString(text[last:start])
		b.WriteString(Placeholder)
		last = end
		found[rl.name]++
	}
	b.WriteString(text[last:])
	return b.String()
}

// Environment variables as YAML (resource_yaml, kubectl output in logs)
// and as JSON (an object or last-applied copy in text).
var (
	envYAML = regexp.MustCompile(`(?m)^[ \t]*-[ \t]+name:[ \t]*["']?([A-Za-z_][A-Za-z0-9_.\-]*)["']?[ \t]*\r?\n[ \t]+value:[ \t]*(\S.*?)[ \t]*$`)
	envJSON = regexp.MustCompile(`"name"\s*:\s*"([A-Za-z_][A-Za-z0-9_.\-]*)"\s*,\s*"value"\s*:\s*"((?:[^"\\]|\\.)*)"`)
)

// envForms are the two expressions with the literals each needs: most
// texts (an alert's "{{ $value }}" included) skip both.
var envForms = []struct {
	re         *regexp.Regexp
	name, vals string
}{
	{envYAML, "name:", "value:"},
	{envJSON, `"name"`, `"value"`},
}

func (r *Redactor) redactEnvText(text string, found Redaction) string {
	for _, form := range envForms {
		if !strings.Contains(text, form.vals) || !strings.Contains(text, form.name) {
			continue
		}
		locs := form.re.FindAllStringSubmatchIndex(text, -1)
		if len(locs) == 0 {
			continue
		}
		var b strings.Builder
		last := 0
		for _, loc := range locs {
			name, start, end := text[loc[2]:loc[3]], loc[4], loc[5]
			if r.envAllowed(name) || isMask(text[start:end]) || start < last {
				continue
			}
			b.WriteString(text[last:start])
			b.WriteString(Placeholder)
			last = end
			found[KindEnv]++
		}
		b.WriteString(text[last:])
		text = b.String()
	}
	return text
}

var lastAppliedLine = regexp.MustCompile(`^([ \t]*)["']?` + regexp.QuoteMeta(LastAppliedAnnotation) + `["']?[ \t]*:[ \t]*(.*)$`)

// redactLastAppliedText replaces the annotation's value in YAML text,
// including a block scalar's indented lines.
func redactLastAppliedText(text string, found Redaction) string {
	if !strings.Contains(text, LastAppliedAnnotation) {
		return text
	}
	lines := strings.Split(text, "\n")
	out := lines[:0]
	for i := 0; i < len(lines); i++ {
		m := lastAppliedLine.FindStringSubmatchIndex(lines[i])
		if m == nil || isMask(lines[i][m[4]:m[5]]) {
			out = append(out, lines[i])
			continue
		}
		indent, v := m[3]-m[2], strings.TrimSpace(lines[i][m[4]:m[5]])
		out = append(out, lines[i][:m[4]]+Placeholder) // may overwrite lines[i]: read first
		found[KindLastApplied]++
		if strings.HasPrefix(v, "|") || strings.HasPrefix(v, ">") {
			for i+1 < len(lines) && (strings.TrimSpace(lines[i+1]) == "" || leadingSpace(lines[i+1]) > indent) {
				i++
			}
		}
	}
	return strings.Join(out, "\n")
}

func leadingSpace(s string) int { return len(s) - len(strings.TrimLeft(s, " \t")) }
