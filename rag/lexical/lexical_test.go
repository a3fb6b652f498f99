package lexical

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/medichq/medic/rag"
)

func TestAnalyze(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string // must all be present
		not  []string // must be absent
	}{
		// The joined word, adjacent pairs and parts of an alert name.
		{"KubePodCrashLooping", []string{"kubepodcrashloop", "crashloop", "kube", "pod", "crash", "loop"}, nil},
		{"StatefulSet", []string{"statefulset", "state", "set"}, nil}, // Snowball: stateful → state
		{"the pods keep restarting", []string{"pod", "restart"}, []string{"the", "keep"}},
		{"HTTPServer returns 502", []string{"httpserver", "http", "server", "502"}, nil},
		{"users see 502s", []string{"user", "502"}, []string{"502s"}},
		{"it gets slow", []string{"slow"}, []string{"get"}},
		{"node's disk", []string{"node", "disk"}, []string{"s"}},
	} {
		got := Analyze(c.in)
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("Analyze(%q) = %v, lacks %q", c.in, got, w)
			}
		}
		for _, w := range c.not {
			if slices.Contains(got, w) {
				t.Errorf("Analyze(%q) = %v, has %q", c.in, got, w)
			}
		}
	}
}

func TestIDF(t *testing.T) {
	// ln(1 + (N - df + 0.5)/(df + 0.5)), positive even for a term in every
	// document.
	for _, c := range []struct{ n, df, want float64 }{
		{100, 1, math.Log(1 + 99.5/1.5)},
		{100, 100, math.Log(1 + 0.5/100.5)},
	} {
		if got := idf(c.n, c.df); math.Abs(got-c.want) > 1e-12 || got <= 0 {
			t.Errorf("idf(%v, %v) = %v, want %v", c.n, c.df, got, c.want)
		}
	}
}

func corpus() []rag.Chunk {
	return []rag.Chunk{
		{ID: "a0", Root: "r", Source: "KubePodCrashLooping.md", Seq: 0, Title: "Kube Pod Crash Looping", Heading: "Meaning", Text: "The pod restarts again and again.", RunbookFor: []string{"KubePodCrashLooping"}},
		{ID: "a1", Root: "r", Source: "KubePodCrashLooping.md", Seq: 1, Title: "Kube Pod Crash Looping", Heading: "Diagnosis", Text: "Check the pod's logs and events; OOMKilled means the memory limit is too low."},
		{ID: "b0", Root: "r", Source: "NodeFilesystemSpaceFillingUp.md", Seq: 0, Title: "Node Filesystem Space Filling Up", Heading: "Meaning", Text: "A filesystem on the node is running out of space.", RunbookFor: []string{"NodeFilesystemSpaceFillingUp"}},
		{ID: "c0", Root: "r", Source: "KubeStatefulSetReplicasMismatch.md", Seq: 0, Title: "Kube StatefulSet Replicas Mismatch", Text: "Fewer replicas than desired are ready.", RunbookFor: []string{"KubeStatefulSetReplicasMismatch"}},
	}
}

func TestSearchRanksRunbooksOnce(t *testing.T) {
	ix := New(corpus())
	syn, err := NewSynonyms(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		query, want, excerpt string
	}{
		{"pods keep restarting", "KubePodCrashLooping.md", ""},
		{"container got OOM killed", "KubePodCrashLooping.md", "a1"}, // through the synonym group; best chunk
		{"kubepodcrashlooping", "KubePodCrashLooping.md", ""},        // the joined alert name
		{"node ran out of disk", "NodeFilesystemSpaceFillingUp.md", "b0"},
		{"the statefulset has fewer replicas", "KubeStatefulSetReplicasMismatch.md", ""},
	} {
		res := ix.Search(syn.Query(c.query), 10)
		if len(res) == 0 || !strings.HasSuffix(res[0].Key, c.want) {
			t.Errorf("%q: got %v, want %s first", c.query, res, c.want)
			continue
		}
		if c.excerpt != "" && res[0].Chunk.ID != c.excerpt {
			t.Errorf("%q: excerpt %s, want %s", c.query, res[0].Chunk.ID, c.excerpt)
		}
		seen := map[string]bool{}
		for _, r := range res {
			if seen[r.Key] {
				t.Errorf("%q: %s twice", c.query, r.Key)
			}
			seen[r.Key] = true
		}
	}
}

// The ranking depends only on the content, not on the order chunks arrive
// in (bleve's changed with segment merges).
func TestSearchDeterministic(t *testing.T) {
	a := corpus()
	b := slices.Clone(a)
	slices.Reverse(b)
	q := map[string]float64{"pod": 1, "memori": 1, "space": 0.4}
	ra, rb := New(a).Search(q, 10), New(b).Search(q, 10)
	if len(ra) != len(rb) {
		t.Fatalf("%v vs %v", ra, rb)
	}
	for i := range ra {
		if ra[i].Key != rb[i].Key || ra[i].Score != rb[i].Score || ra[i].Chunk.ID != rb[i].Chunk.ID {
			t.Errorf("rank %d: %+v vs %+v", i, ra[i], rb[i])
		}
	}
}

func TestSynonyms(t *testing.T) {
	syn, err := NewSynonyms([][]string{{"gateway", "ingress"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		query string
		has   map[string]float64
	}{
		{"users see 502s from the gateway", map[string]float64{"502": 1, "ingress": synonymWeight, "gateway": 1, "bad": synonymWeight / 2}},
		{"out of memory", map[string]float64{"oom": synonymWeight, "memori": 1, "limit": synonymWeight / 2}},
		{"it is slow", map[string]float64{"slow": 1, "latenc": synonymWeight}},
	} {
		q := syn.Query(c.query)
		for term, w := range c.has {
			if q[term] != w {
				t.Errorf("%q: %s weighs %v, want %v (query %v)", c.query, term, q[term], w, q)
			}
		}
	}
	if _, err := NewSynonyms([][]string{{"ok", "the"}}); err == nil || !strings.Contains(err.Error(), "synonyms[0]") {
		t.Errorf("stop-word entry: %v", err)
	}
}

// A store filled before ingestion skipped duplicates holds the built-ins
// and a team's copy: a search returns one of them.
func TestSearchCollapsesCopies(t *testing.T) {
	for _, c := range []struct {
		name     string
		copyHash string
		copyURL  string
		want     int
	}{
		{"same content", "h1", "", 1},
		{"same runbook URL", "h2", "https://runbooks.example/KubePodCrashLooping/", 1},
		{"different content and URL", "h2", "", 2},
	} {
		base := rag.Chunk{ID: "a", Root: "default", Source: "KubePodCrashLooping.md", Title: "Pod crash looping", Text: "pod restarts", Hash: "h1", URL: "https://runbooks.example/kubepodcrashlooping"}
		cp := base
		cp.ID, cp.Root, cp.Hash, cp.URL = "b", "team", c.copyHash, c.copyURL
		res := New([]rag.Chunk{base, cp}).Search(map[string]float64{"pod": 1}, 10)
		if len(res) != c.want {
			t.Errorf("%s: %d results, want %d: %+v", c.name, len(res), c.want, res)
		}
	}
}

// The flattened form carries the weights as repetitions: a title term
// fieldWeight×FlatScale times, a typed query word five times, a synonym's
// share rounded, at least once.
func TestFlat(t *testing.T) {
	count := func(text, term string) int {
		n := 0
		for _, w := range strings.Fields(text) {
			if w == term {
				n++
			}
		}
		return n
	}
	chunks := []rag.Chunk{
		{ID: "x1", Root: "r", Source: "KubeJobFailed.md", Seq: 1, Title: "Zebra Job", Heading: "Diagnosis", Text: "check the quokka"},
		{ID: "x0", Root: "r", Source: "KubeJobFailed.md", Seq: 0, Title: "Zebra Job", Heading: "Meaning", Text: "a quokka job", RunbookFor: []string{"KubeJobFailed"}},
	}
	text, name := FlatDocument(chunks)
	for _, c := range []struct {
		in         string
		term       string
		text, name int
	}{
		{"title", "zebra", 6, 2},             // title ×3 ×2
		{"headings", "diagnosi", 3, 0},       // headings ×1.5 ×2
		{"body, twice", "quokka", 4, 0},      // body ×1 ×2, two chunks
		{"alert names", "kubejobfail", 8, 4}, // file name and RunbookFor, ×2 ×2
	} {
		if got := count(text, c.term); got != c.text {
			t.Errorf("%s: %q %d times in the text, want %d:\n%s", c.in, c.term, got, c.text, text)
		}
		if got := count(name, c.term); got != c.name {
			t.Errorf("%s: %q %d times in the name, want %d:\n%s", c.in, c.term, got, c.name, name)
		}
	}
	if !strings.HasPrefix(text, "zebra") {
		t.Errorf("fields out of order (Seq must sort the chunks): %s", text)
	}
	syn, err := NewSynonyms(nil)
	if err != nil {
		t.Fatal(err)
	}
	q := FlatQuery(syn.Query("pod oom"))
	for term, want := range map[string]int{"pod": 5, "oom": 5, "oomkil": 2, "memori": 2, "limit": 1, "out": 1} {
		if got := count(q, term); got != want {
			t.Errorf("query %q %d times, want %d: %s", term, got, want, q)
		}
	}
	if again := FlatQuery(syn.Query("pod oom")); again != q {
		t.Errorf("query text not deterministic: %q then %q", q, again)
	}
}
