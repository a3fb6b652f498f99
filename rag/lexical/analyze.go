// Package lexical ranks runbooks (not chunks) with a deterministic,
// in-process BM25F over a small corpus.
//
// Why not the search engine's own BM25: bleve's scorer, as medic used it,
// counted idf twice, computed idf per field (so any title word looked rare),
// took distinct terms per document as the "average field length", and summed
// its statistics per index segment, so rankings changed after a background
// merge. A knowledge base holds a few hundred runbooks at most: scoring them
// in memory is exact, takes well under a millisecond, and depends only on
// the content.
package lexical

import (
	"strings"
	"unicode"

	"github.com/blevesearch/snowballstem"
	"github.com/blevesearch/snowballstem/english"
)

// Analyze turns text into index terms: words split on anything that is not
// a letter or digit, CamelCase words kept whole (lower-cased) AND split into
// their parts ("KubePodCrashLooping" → kubepodcrashloop, kube, pod, crash,
// loop), English stop words dropped, the rest stemmed (Snowball English).
// Queries and documents go through the same function.
func Analyze(text string) []string {
	var out []string
	for _, w := range words(text) {
		parts := splitCamel(w)
		if len(parts) > 1 {
			if t := term(w); t != "" {
				out = append(out, t)
			}
		}
		// Adjacent parts joined too, so that "statefulset" or "crashloop"
		// typed by a user meets "KubeStatefulSetReplicasMismatch" or
		// "KubePodCrashLooping".
		for i := 0; len(parts) > 2 && i+1 < len(parts); i++ {
			if t := term(parts[i] + parts[i+1]); t != "" {
				out = append(out, t)
			}
		}
		for _, p := range parts {
			if t := term(p); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// term lower-cases, drops stop words and one-letter words, and stems.
func term(w string) string {
	w = strings.ToLower(w)
	if len(w) < 2 && !isDigits(w) || stopWords[w] {
		return ""
	}
	if isDigits(w) {
		return w
	}
	// "502s", "5xxs": a status code in the plural is the code.
	if w[0] >= '0' && w[0] <= '9' && len(w) > 1 && w[len(w)-1] == 's' {
		return term(w[:len(w)-1])
	}
	env := snowballstem.NewEnv(w)
	english.Stem(env)
	if stopWords[env.Current()] { // "gets" → get
		return ""
	}
	return env.Current()
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func words(text string) []string {
	return strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// splitCamel splits "StatefulSet" into Stateful, Set and "HTTPServer" into
// HTTP, Server; a word with no case change is returned alone. Digits stick
// to what precedes them ("etcd3", "5xx").
func splitCamel(w string) []string {
	rs := []rune(w)
	var out []string
	start := 0
	for i := 1; i < len(rs); i++ {
		prev, cur := rs[i-1], rs[i]
		boundary := unicode.IsLower(prev) && unicode.IsUpper(cur) ||
			// HTTPServer: the last upper-case letter starts the next word.
			i+1 < len(rs) && unicode.IsUpper(prev) && unicode.IsUpper(cur) && unicode.IsLower(rs[i+1])
		if boundary {
			out = append(out, string(rs[start:i]))
			start = i
		}
	}
	return append(out, string(rs[start:]))
}

// stopWords are common English words that carry no topic. Negations and
// the particles of phrasal verbs that matter here (not, no, down, up, out,
// off, full) are kept: "node down", "out of memory".
var stopWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`a an and are as at be been being but by can could did do does doing for from
		had has have having he her here hers him his how i if in into is it its itself just me more most my
		of on once only or other our ours over own same she should so some such than that the their theirs them
		then there these they this those through to too under until very was we were what when where which while
		who whom why will with would you your yours again about above after against all any because before below
		between both during each few further nor s t don now also get got keep keeps see seem seems since
		anymore anyway still just really right something someth noth nothing everything everyth thing`) {
		stopWords[w] = true
	}
}
