package redact

import (
	"strings"
	"unicode/utf8"
)

// prefilter finds, in one pass over a text, which rules' literals it holds
// (rule.need, rule.all), so that a rule's regular expression runs only on
// texts it could match. Before, every rule searched the text for each of
// its literals (some 40 substring searches and a lower-cased copy per
// text): a third of the pipeline's CPU in the storm benchmark.
//
// It only skips work: whatever the expressions match, the prefilter lets
// through (prefilter_test.go holds it to them, with a fuzzer). Replacing a
// secret with Placeholder never adds a literal ('[' and ']' are in none),
// so one scan of the text as it arrives serves every rule after it.
type prefilter struct {
	// first maps a byte to the literals that may start there: a fold
	// literal under both cases of its first letter.
	first [256][]literal
	// bigram holds the first two bytes, in lower case, of every literal
	// longer than one byte: most positions whose byte may start a literal
	// ("a", "s", "p" are common) are passed over on this test alone.
	bigram [1 << 16 / 64]uint64
	// single marks the bytes that are a literal by themselves ("@").
	single [256]bool
	// needed is every rule bit that has need literals.
	needed uint64
}

type literal struct {
	s    string
	fold bool   // s is lower case ASCII; compared case-insensitively
	need uint64 // rule bits this literal satisfies as a need
	all  uint64 // the bit of this all-literal (rule.allBits)
}

// scanResult holds the bits of the rules whose need literals a text holds,
// and of the all-literals it holds.
type scanResult struct{ need, all uint64 }

func (s scanResult) allows(rl *rule) bool {
	if rl.needBit != 0 && s.need&rl.needBit == 0 {
		return false
	}
	return s.all&rl.allBits == rl.allBits
}

// newPrefilter numbers rs's literal-bearing rules and indexes their
// literals; rules without literals (operators' patterns) always run.
// At most 64 rules may carry literals (the built-ins are 16).
func newPrefilter(rs []rule) *prefilter {
	p := &prefilter{}
	allBits := map[string]uint64{}
	add := func(l literal) {
		c := l.s[0]
		if len(l.s) == 1 {
			p.single[c] = true
		} else {
			k := bigramOf(c, l.s[1])
			p.bigram[k/64] |= 1 << (k % 64)
		}
		p.first[c] = append(p.first[c], l)
		if l.fold {
			if u := upperASCII(c); u != c {
				p.first[u] = append(p.first[u], l)
			}
		}
	}
	n := 0
	for i := range rs {
		rl := &rs[i]
		if len(rl.need) > 0 {
			if n == 64 {
				panic("redact: more than 64 rules with literals")
			}
			rl.needBit = 1 << n
			n++
			p.needed |= rl.needBit
			for _, s := range rl.need {
				add(literal{s: s, fold: rl.fold, need: rl.needBit})
			}
		}
		for _, s := range rl.all {
			bit, ok := allBits[s]
			if !ok {
				bit = 1 << len(allBits)
				allBits[s] = bit
				add(literal{s: s, all: bit})
			}
			rl.allBits |= bit
		}
	}
	return p
}

// scan reports the literals text holds.
func (p *prefilter) scan(text string) scanResult {
	t := text
	for i := 0; i < len(text); i++ {
		if text[i] >= utf8.RuneSelf {
			t = foldToASCII(text)
			break
		}
	}
	var r scanResult
	for i := 0; i < len(t); i++ {
		c := t[i]
		cands := p.first[c]
		if len(cands) == 0 {
			continue
		}
		if !p.single[c] {
			if i+1 == len(t) {
				break // every other literal is longer than the rest
			}
			if k := bigramOf(c, t[i+1]); p.bigram[k/64]&(1<<(k%64)) == 0 {
				continue
			}
		}
		rest := t[i:]
		for j := range cands {
			l := &cands[j]
			if (l.need != 0 && r.need&l.need == l.need) || (l.all != 0 && r.all&l.all == l.all) {
				continue // already seen
			}
			if len(rest) < len(l.s) {
				continue
			}
			if l.fold && !equalFoldASCII(rest[:len(l.s)], l.s) || !l.fold && rest[:len(l.s)] != l.s {
				continue
			}
			r.need |= l.need
			r.all |= l.all
		}
	}
	return r
}

// bigramOf numbers two bytes after ASCII lower-casing, as the bigram set
// does for every literal (fold or not: a superset is enough).
func bigramOf(a, b byte) uint {
	return uint(lowerASCII(a))<<8 | uint(lowerASCII(b))
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// equalFoldASCII compares s with lower, which is lower-case ASCII.
func equalFoldASCII(s, lower string) bool {
	for i := 0; i < len(lower); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// foldToASCII replaces the two non-ASCII letters that Unicode case folding
// (and so a (?i) expression) equates with ASCII letters: the Kelvin sign
// with k and the long s with s. Other non-ASCII text is left as it is;
// no literal holds it.
func foldToASCII(text string) string {
	if !strings.ContainsRune(text, '\u212A') && !strings.ContainsRune(text, '\u017F') {
		return text
	}
	return strings.NewReplacer("\u212A", "k", "\u017F", "s").Replace(text)
}
