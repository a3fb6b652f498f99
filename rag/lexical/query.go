package lexical

import (
	"fmt"
	"strings"
)

// synonymWeight is the weight of a term a synonym group adds to a query:
// enough to find a runbook that says "OOMKilled" for "out of memory", not
// so much that the words the user typed stop mattering.
var synonymWeight = 0.4

// DefaultSynonyms are groups of words and phrases on-call engineers use for
// the same problem, applied at query time: a query that contains any entry
// of a group (as a whole phrase, after analysis) also searches the others.
// knowledge_base.synonyms in the configuration adds groups to these.
var DefaultSynonyms = [][]string{
	{"oom", "out of memory", "oomkilled", "memory limit", "killed", "memory"},
	{"5xx", "500", "502", "503", "504", "bad gateway", "service unavailable", "failing requests", "errors"},
	{"latency", "slow", "timeouts", "timeout", "timed out", "duration"},
	{"disk", "filesystem", "disk full", "no space left", "out of space", "space"},
	{"pvc", "persistentvolumeclaim", "persistent volume", "volume claim", "volume", "storage"},
	{"raid", "physical disk", "disk died", "disk failure", "array", "degraded"},
	{"flapping", "up and down", "flipping", "keeps changing"},
	{"image pull", "imagepullbackoff", "errimagepull", "pull", "containercreating", "waiting"},
	{"scheduler", "kube-scheduler"},
	{"down", "gone", "disappeared", "dead", "not running"},
	{"controller manager", "controllers", "kube-controller-manager"},
	{"slow to start", "startup", "start up", "takes minutes", "start latency"},
	{"daemonset", "every node", "each node", "all nodes", "some nodes", "log collector", "agent"},
	{"restart", "restarting", "restarts", "crash", "crashes", "crashloop", "crashloopbackoff", "crashlooping", "back-off", "backoff"},
	{"cert", "certificate", "tls", "x509", "expired", "expiration", "expiry"},
	{"throttled", "throttling", "cpu limit"},
	{"can't schedule", "cannot schedule", "unschedulable", "pending", "not scheduled", "insufficient"},
	{"replicas missing", "replicas", "unavailable replicas", "mismatch"},
	{"job failed", "cronjob", "job", "backup"},
	{"not ready", "notready", "unreachable", "node down"},
	{"quorum", "leader", "members", "etcd"},
	{"scrape", "target down", "targets", "metrics endpoint"},
	{"notifications", "notification", "notify", "paged", "page", "receiver", "slack", "pagerduty", "email", "webhook", "integration"},
	{"dns", "coredns", "resolve", "lookup"},
	{"inodes", "inode", "files"},
	{"clock", "time", "ntp", "skew", "drift", "synchronising"},
	{"quota", "exceeded quota", "resource quota"},
	{"config", "configuration", "reload"},
	{"api server", "apiserver", "kube-apiserver", "kubectl", "api"},
	{"hpa", "autoscaler", "horizontalpodautoscaler", "autoscaling"},
	{"rollout", "rolling update", "deploy", "release", "upgrade"},
}

// Synonyms are analysed synonym groups.
type Synonyms struct {
	groups [][][]string // group → entry → terms
}

// NewSynonyms analyses the default groups plus extra ones. An entry that
// analyses to no term (a stop word alone) is an error naming it.
func NewSynonyms(extra [][]string) (*Synonyms, error) {
	s := &Synonyms{}
	for gi, g := range append(append([][]string(nil), DefaultSynonyms...), extra...) {
		var group [][]string
		for _, e := range g {
			terms := Analyze(e)
			if len(terms) == 0 {
				if gi >= len(DefaultSynonyms) {
					return nil, fmt.Errorf("synonyms[%d]: %q has only stop words", gi-len(DefaultSynonyms), e)
				}
				return nil, fmt.Errorf("default synonym group %d: %q has only stop words", gi, e)
			}
			group = append(group, terms)
		}
		s.groups = append(s.groups, group)
	}
	return s, nil
}

// Query turns text into weighted terms: each distinct term of the text
// weighs 1 (a word the finding repeats should not outweigh the rest), and
// the terms of every synonym group the text touches are added at
// synonymWeight unless the text has them already.
func (s *Synonyms) Query(text string) map[string]float64 {
	terms := Analyze(text)
	q := make(map[string]float64, len(terms))
	for _, t := range terms {
		q[t] = 1
	}
	if s == nil {
		return q
	}
	for _, g := range s.groups {
		hit := false
		for _, e := range g {
			if containsSeq(terms, e) {
				hit = true
				break
			}
		}
		if !hit {
			continue
		}
		for _, e := range g {
			// A phrase's words share its weight: "out of memory" should
			// not make every runbook that says "out" match.
			w := synonymWeight / float64(len(e))
			for _, t := range e {
				if q[t] < w {
					q[t] = w
				}
			}
		}
	}
	return q
}

func containsSeq(terms, seq []string) bool {
	if len(seq) == 0 || len(seq) > len(terms) {
		return false
	}
outer:
	for i := 0; i+len(seq) <= len(terms); i++ {
		for j, t := range seq {
			if terms[i+j] != t {
				continue outer
			}
		}
		return true
	}
	return false
}

// String lists the groups, for debugging.
func (s *Synonyms) String() string {
	var b strings.Builder
	for _, g := range s.groups {
		fmt.Fprintln(&b, g)
	}
	return b.String()
}
