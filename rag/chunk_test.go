package rag

import (
	"slices"
	"strings"
	"testing"
)

func TestParseRunbook(t *testing.T) {
	src := "---\ntitle: Kube Pod Crash Looping\nweight: 20\n---\n\n# KubePodCrashLooping\n\n## Meaning\n\nPod is in CrashLoop.\n\n## Impact\n\nService degradation.\n\n" +
		"## Diagnosis\n\nCheck `kubectl logs`.\n\n```shell\n# not a heading\nkubectl describe pod $POD\n```\n\n### Deeper\n\nSee KubeContainerWaiting too.\n\n## Mitigation\n\nFix it.\n"
	d := ParseDocument("default", "kubernetes/KubePodCrashLooping.md", []byte(src))
	if d.Title != "Kube Pod Crash Looping" || d.Name != "KubePodCrashLooping" {
		t.Errorf("title %q, name %q", d.Title, d.Name)
	}
	if !slices.Equal(d.RunbookFor, []string{"KubePodCrashLooping"}) {
		t.Errorf("runbook for %v", d.RunbookFor)
	}
	chunks := d.Chunks(DefaultChunkOptions())
	if len(chunks) != 1 {
		t.Fatalf("small sections are packed into one chunk, got %d", len(chunks))
	}
	c := chunks[0]
	if c.Heading != "Meaning, Impact · Diagnosis › Deeper · Mitigation" {
		t.Errorf("heading %q", c.Heading)
	}
	if !strings.Contains(c.Text, "# not a heading") || strings.Contains(c.Text, "weight: 20") {
		t.Errorf("text %q", c.Text)
	}
	if !slices.Contains(c.Alerts, "KubeContainerWaiting") || !slices.Contains(c.Alerts, "KubePodCrashLooping") {
		t.Errorf("alerts %v", c.Alerts)
	}
	if c.ID != ChunkID("default", "kubernetes/KubePodCrashLooping.md", 0) || c.Hash != HashContent([]byte(src)) {
		t.Errorf("id %s hash %s", c.ID, c.Hash)
	}
}

func TestLongSectionsAreWindowedWithOverlap(t *testing.T) {
	var b strings.Builder
	b.WriteString("# Big\n\n## Steps\n\n")
	for i := range 60 {
		b.WriteString("Step number " + strings.Repeat("x", i%7) + " does one careful thing to the cluster.\n")
	}
	d := ParseDocument("r", "big.md", []byte(b.String()))
	opts := ChunkOptions{TargetChars: 600, MaxChars: 1000, OverlapChars: 150}
	chunks := d.Chunks(opts)
	if len(chunks) < 3 {
		t.Fatalf("%d chunks", len(chunks))
	}
	for i, c := range chunks {
		if len(c.Text) > opts.TargetChars+opts.OverlapChars+100 {
			t.Errorf("chunk %d has %d bytes", i, len(c.Text))
		}
		if c.Heading != "Steps" || c.Seq != i {
			t.Errorf("chunk %d: heading %q seq %d", i, c.Heading, c.Seq)
		}
		if i > 0 {
			prev := strings.Split(chunks[i-1].Text, "\n")
			last := prev[len(prev)-1]
			idx := strings.Index(c.Text, last)
			if idx < 0 || idx > opts.OverlapChars {
				t.Errorf("chunk %d does not start with the end of chunk %d", i, i-1)
			}
		}
	}
}

func TestWholeFileChunking(t *testing.T) {
	d := ParseDocument("r", "a.md", []byte("# A\n\n## One\n\nx\n\n## Two\n\ny\n"))
	c := d.Chunks(ChunkOptions{WholeFile: true, TargetChars: 1, MaxChars: 1})
	if len(c) != 1 || !strings.Contains(c[0].Text, "## Two") {
		t.Fatalf("%+v", c)
	}
}

func TestFrontMatterURLAndAlerts(t *testing.T) {
	d := ParseDocument("r", "team/db.md", []byte("---\ntitle: Database down\nrunbook_url: https://wiki.example.com/db\nalerts: [PostgresDown, PgBouncerDown]\n---\nCall the DBA.\n"))
	if d.URL != "https://wiki.example.com/db" || !slices.Equal(d.RunbookFor, []string{"PostgresDown", "PgBouncerDown"}) {
		t.Errorf("url %q, for %v", d.URL, d.RunbookFor)
	}
	if d.Title != "Database down" {
		t.Errorf("title %q", d.Title)
	}
}

func TestTextAndHTML(t *testing.T) {
	d := ParseDocument("r", "notes/disk.txt", []byte("Disk full on a node.\n\n# this is not a heading in text\n"))
	if d.Title != "disk" || len(d.Chunks(DefaultChunkOptions())) != 1 {
		t.Errorf("text: %q", d.Title)
	}
	h := ParseDocument("r", "wiki/etcd.html", []byte(`<html><head><title>x</title><style>p{}</style></head><body>
<h1>EtcdSlow</h1><p>etcd is <b>slow</b>.</p><h2>Diagnosis</h2><ul><li>check disks</li><li>check network</li></ul><script>alert(1)</script></body></html>`))
	c := h.Chunks(DefaultChunkOptions())
	if h.Title != "EtcdSlow" || len(c) != 1 {
		t.Fatalf("html: title %q, %d chunks", h.Title, len(c))
	}
	if !strings.Contains(c[0].Text, "etcd is slow") || !strings.Contains(c[0].Text, "- check disks") || strings.Contains(c[0].Text, "alert(1)") {
		t.Errorf("html text %q", c[0].Text)
	}
}

func TestIsAlertName(t *testing.T) {
	for _, s := range []string{"KubePodCrashLooping", "etcdNoLeader", "CPUThrottlingHigh", "KubeAPIDown", "NodeRAIDDegraded"} {
		if !IsAlertName(s) {
			t.Errorf("%s not an alert name", s)
		}
	}
	for _, s := range []string{"Meaning", "kubectl", "PagerDuty", "configuration", "Watch"} {
		if IsAlertName(s) {
			t.Errorf("%s taken for an alert name", s)
		}
	}
}

func TestNormalizeURL(t *testing.T) {
	a := NormalizeURL("https://runbooks.prometheus-operator.dev/runbooks/etcd/etcdnoleader")
	for _, u := range []string{"http://runbooks.prometheus-operator.dev/runbooks/etcd/etcdNoLeader/", "https://www.runbooks.prometheus-operator.dev/runbooks/etcd/etcdnoleader#diagnosis", "https://runbooks.prometheus-operator.dev/runbooks/etcd/etcdnoleader.md?x=1"} {
		if NormalizeURL(u) != a {
			t.Errorf("%s → %s, want %s", u, NormalizeURL(u), a)
		}
	}
}
