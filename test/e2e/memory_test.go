package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/internal/testkit"
)

// TestMemoryAtTheGoLimitIsReported: a medic whose Go memory limit is under
// what it uses says so, as a warning and as the medic_memory_pressure gauge
// an operator can alert on (the pod's limit is what a burst fills), also
// when it does not release memory after start-up, and goes on turning
// alerts into findings, each once.
func TestMemoryAtTheGoLimitIsReported(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the medic binary")
	}
	bin := medicBinary(t)
	for _, tc := range []struct{ name, config string }{
		{"release after start (default)", ""},
		{"no release after start", "memory: {release_after_start: false}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			configPath, findings := processConfig(t, "info", tc.config)
			// Read by the child's runtime at its start; this process's own
			// limit was set at its start and stays.
			t.Setenv("GOMEMLIMIT", "16MiB")
			p := startProcess(t, bin, configPath, testkit.FreeAddr(t))
			defer func() {
				if t.Failed() {
					t.Logf("medic's log:\n%s", p.out.String())
				}
			}()
			const warning = `level=WARN msg="memory at the Go limit`
			testkit.Eventually(t, 30*time.Second, "a "+warning+" line with a 16 MiB Go limit",
				func() bool { return strings.Contains(p.out.String(), warning) })
			if got := testkit.Metric(t, testkit.Scraped(p.url+"/metrics"), "medic_memory_pressure"); got != 1 {
				t.Errorf("medic_memory_pressure = %v after the warning, want 1", got)
			}
			if status, answer := post(t, p.url+"/api/alerts", burst(50, 0), nil); status != http.StatusOK {
				t.Fatalf("alerts under memory pressure: %d %v", status, answer)
			}
			recs := waitFindings(t, findings, 60*time.Second, func(r []record) bool { return len(r) >= 50 })
			for id, n := range countByID(recs) {
				if n != 1 {
					t.Errorf("finding %s written %d times", id, n)
				}
			}
			if len(recs) != 50 {
				t.Errorf("%d findings for 50 alerts", len(recs))
			}
		})
	}
}
