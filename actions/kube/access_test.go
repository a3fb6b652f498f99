package kube

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"

	k8stesting "k8s.io/client-go/testing"

	"github.com/medichq/medic/internal/kube"
)

// calls collects every request the fake clients of this package's tests
// received (newCluster records them at cleanup).
var calls = struct {
	sync.Mutex
	seen map[kube.Permission]string // the first test that made the call
}{seen: map[kube.Permission]string{}}

func recordCalls(t *testing.T, actions ...[]k8stesting.Action) {
	calls.Lock()
	defer calls.Unlock()
	for _, as := range actions {
		for _, a := range as {
			res := a.GetResource()
			p := kube.Permission{Verb: a.GetVerb(), Group: res.Group, Resource: res.Resource}
			if sub := a.GetSubresource(); sub != "" {
				p.Resource += "/" + sub
			}
			if _, ok := calls.seen[p]; !ok {
				calls.seen[p] = t.Name()
			}
		}
	}
}

// TestMain runs the package's tests, then fails when an action called the
// API for something APIAccess does not list: the list is what the chart's
// roles are checked against, so an unlisted call is one the chart may not
// grant.
func TestMain(m *testing.M) {
	code := m.Run()
	var unlisted []string
	for p, test := range calls.seen {
		if !hasPermission(APIAccess(), p) && !hasPermission(HelmAccess(), p) {
			unlisted = append(unlisted, fmt.Sprintf("%s %s (group %q), first in %s", p.Verb, p.Resource, p.Group, test))
		}
	}
	sort.Strings(unlisted)
	if len(unlisted) > 0 {
		fmt.Fprintln(os.Stderr, "FAIL: Kubernetes calls the actions make that APIAccess (actions/kube/access.go) does not list:")
		for _, u := range unlisted {
			fmt.Fprintln(os.Stderr, "  "+u)
		}
		code = 1
	}
	os.Exit(code)
}

func TestAPIAccessReadsNoSecrets(t *testing.T) {
	for _, p := range APIAccess() {
		if p.Resource == "secrets" || p.Verb != "get" && p.Verb != "list" && p.Verb != "watch" {
			t.Errorf("APIAccess lists %s", p)
		}
	}
}
