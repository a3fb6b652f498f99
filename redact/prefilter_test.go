package redact

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// The literal prefilter only skips work: wherever a rule's expression
// matches, the prefilter lets it run.
func TestPrefilterNeverSkipsAMatch(t *testing.T) {
	t.Parallel()
	samples := []string{
		"-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
		"Authorization: Bearer abcdefghijklmnop", "AUTHORIZATION: BEARER ABCDEFGHIJKL",
		"Authorization: Basic dXNlcjpwYXNzd29yZA==", "BASIC dXNlcjpwYXNzd29yZA==",
		"postgres://app:S3cr3t@db:5432/x", "AMQPS://guest:guest@rabbit/",
		"eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl",
		"AKIAABCDEFGHIJKLMNOP", "key ASIAABCDEFGHIJKLMNOP here",
		"ghp_" + strings.Repeat("a", 36), "github_pat_" + strings.Repeat("b", 45),
		"glpat-" + strings.Repeat("c", 20), "xoxb-1234567890-abcdef",
		"https://hooks.slack.com/services/T000/B000/XXXX",
		"sk-proj-" + strings.Repeat("d", 24), "AIza" + strings.Repeat("e", 35),
		"sk_live_" + strings.Repeat("f", 16), "rk_test_" + strings.Repeat("g", 16),
		"DefaultEndpointsProtocol=https;ACCOUNTKEY=abc123==;", "SharedAccessSignature=sv=2020",
		"Server=db;User Id=sa;PASSWORD=hunter22;", "host=db pwd=hunter22",
		"DB_PASSWORD=hunter22", "Api-Key: 123456", "APIKEY=abcdef", "client_secret: 'xyz123'",
		"Access_Key = foo-bar", "PRIVATE_KEY=foo123", "credentials: abc123", "X-Auth-Token: tok123",
		"nothing to see here", "replicas: 3", "Kube pod crash looping",
		// Unicode case folding: (?i) equates the Kelvin sign with k and the
		// long s with s.
		"ACCOUNT\u212AEY=abc123", "pa\u017Fsword: hunter22", "Bearer \u00e9t\u00e9-abcdefghijk",
	}
	r := Default()
	for _, s := range samples {
		seen := r.pre.scan(s)
		for i := range r.rules {
			if rl := &r.rules[i]; rl.re.MatchString(s) && !seen.allows(rl) {
				t.Errorf("rule %q matches %q but its prefilter %v skips it", rl.name, s, rl.need)
			}
		}
	}
}

// FuzzPrefilter holds the prefilter to the expressions on any text.
func FuzzPrefilter(f *testing.F) {
	for _, s := range []string{"Bearer abcdefghij", "pwd=secret1", "x://a:b@c", "TOKEN: abc", "to\u212Aen=abcd"} {
		f.Add(s)
	}
	r := Default()
	f.Fuzz(func(t *testing.T, s string) {
		seen := r.pre.scan(s)
		for i := range r.rules {
			if rl := &r.rules[i]; rl.re.MatchString(s) && !seen.allows(rl) {
				t.Fatalf("rule %q matches %q but its prefilter skips it", rl.name, s)
			}
		}
	})
}

// Texts made of pieces of the rules' own literals and matches, in random
// case, cut anywhere: the fuzzer's job in a second, every test run.
func TestPrefilterRandomTexts(t *testing.T) {
	t.Parallel()
	r := Default()
	var pieces []string
	for _, rl := range r.rules {
		pieces = append(pieces, rl.need...)
		pieces = append(pieces, rl.all...)
	}
	pieces = append(pieces, " ", "=", ":", "\n", "\"", "abcdefgh12345678", "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345678", "\u212A", "\u017F", "é", "-", "_", "/")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		var b strings.Builder
		for range 1 + rng.IntN(8) {
			p := pieces[rng.IntN(len(pieces))]
			if rng.IntN(3) == 0 {
				p = strings.ToUpper(p)
			}
			if rng.IntN(4) == 0 && len(p) > 1 {
				p = p[rng.IntN(len(p)):]
			}
			b.WriteString(p)
		}
		s := b.String()
		seen := r.pre.scan(s)
		for i := range r.rules {
			if rl := &r.rules[i]; rl.re.MatchString(s) && !seen.allows(rl) {
				t.Fatalf("rule %q matches %q but its prefilter skips it", rl.name, s)
			}
		}
	}
}
