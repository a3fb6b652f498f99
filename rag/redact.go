package rag

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Redactor removes secrets from text before it leaves for a model. Each rule
// is a regular expression; when it has a capturing group, only the first
// group is replaced (the key name stays readable), else the whole match.
type Redactor struct {
	rules []redactRule
}

type redactRule struct {
	name string
	re   *regexp.Regexp
}

// Placeholder replaces each secret.
const Placeholder = "[REDACTED]"

// builtinRules cover what logs, events and annotations leak most: bearer and
// basic credentials, key=value secrets, connection strings, private keys
// and the token formats of the big providers. Order matters: the broad
// key=value rule runs after the specific formats so it does not split them.
var builtinRules = []struct{ name, expr string }{
	{"private key", `(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----`},
	{"bearer token", `(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{8,}=*)`},
	{"basic auth", `(?i)\bbasic\s+([A-Za-z0-9+/]{8,}={0,2})`},
	{"connection string", `(?i)\b[a-z][a-z0-9+.\-]{1,30}://[^\s:/@"'<>]*:([^\s@/"'<>]+)@`},
	{"jwt", `\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}`},
	{"aws access key", `\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b`},
	{"github token", `\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b`},
	{"gitlab token", `\bglpat-[A-Za-z0-9_\-]{20,}\b`},
	{"slack token", `\bxox[abprs]-[A-Za-z0-9\-]{10,}\b`},
	{"slack webhook", `https://hooks\.slack\.com/services/[A-Za-z0-9/_\-]+`},
	{"openai key", `\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}\b`},
	{"google api key", `\bAIza[0-9A-Za-z_\-]{35}\b`},
	{"stripe key", `\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b`},
	{"azure key", `(?i)\b(?:AccountKey|SharedAccessKey|SharedAccessSignature)=([^;\s"']+)`},
	{"password in connection string", `(?i)(?:^|[;\s"'])(?:password|pwd)=([^;\s"']+)`},
	{"secret value", `(?i)\b[A-Za-z0-9_.\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key|credentials?|authorization)[A-Za-z0-9_.\-]*["']?\s*[:=]\s*["']?([^\s"',;}{]{3,})`},
}

// NewRedactor builds the built-in rules plus extra patterns (Go regular
// expressions, from ai.redact_patterns).
func NewRedactor(extra []string) (*Redactor, error) {
	r := &Redactor{}
	for _, b := range builtinRules {
		r.rules = append(r.rules, redactRule{name: b.name, re: regexp.MustCompile(b.expr)})
	}
	for i, p := range extra {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("redact pattern %d %q: %w", i, p, err)
		}
		r.rules = append(r.rules, redactRule{name: "custom pattern", re: re})
	}
	return r, nil
}

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
	word := "secrets"
	if n == 1 {
		word = "secret"
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
// removed. A nil Redactor uses the built-in rules.
func (r *Redactor) Redact(text string) (string, Redaction) {
	if r == nil {
		r = defaultRedactor
	}
	found := Redaction{}
	for _, rule := range r.rules {
		text = replaceSecrets(rule, text, found)
	}
	return text, found
}

var defaultRedactor, _ = NewRedactor(nil)

func replaceSecrets(rule redactRule, text string, found Redaction) string {
	locs := rule.re.FindAllStringSubmatchIndex(text, -1)
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
		secret := text[start:end]
		if secret == "" || strings.Contains(secret, Placeholder) || strings.Trim(secret, "[]*xX") == "" ||
			strings.EqualFold(secret, "bearer") || strings.EqualFold(secret, "basic") {
			continue // already redacted, or a mask
		}
		b.WriteString(text[last:start])
		b.WriteString(Placeholder)
		last = end
		found[rule.name]++
	}
	b.WriteString(text[last:])
	return b.String()
}
