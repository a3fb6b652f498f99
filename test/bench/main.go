// Command bench is medic's end-to-end benchmark harness (`make bench`, or
// `go run ./test/bench`). It builds medic, runs it as a subprocess with a
// file sink, and measures:
//
//   - raw JetStream: async publishes with message IDs to an embedded
//     server's file-storage stream, in this process, as the ceiling medic's
//     intake is compared with;
//   - the pipeline's JetStream floor (floor.go): the stores, deliveries
//     and acks of medic's pipeline for each alert, done by JetStream alone,
//     unlimited and in a child process under the storm's memory limit;
//   - webhook intake: alerts/s accepted (HTTP 200, i.e. stored in
//     JetStream) from concurrent clients posting Alertmanager webhook
//     batches as fast as they can, the answer latency, and how long the
//     pipeline takes to turn every alert into a line of the findings file;
//   - end-to-end latency at a fixed rate: webhook sent → finding line in
//     the file, with lost and duplicated alerts counted;
//   - medic's resident memory idle, under load and at the fixed rate.
//
// It prints a table and writes the same figures to
// test/bench/results/latest.json. It asserts no timing: it exits non-zero
// only when the run itself breaks or accepted alerts were lost.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/fixtures"
	"github.com/medichq/medic/sources/alertmanager"
)

type options struct {
	medic        string
	data         string
	out          string
	keep         bool
	alerts       int
	batch        int
	clients      int
	jsMsgs       int
	jsRuns       int
	rate         int
	latBatch     int
	latClients   int
	duration     time.Duration
	poll         time.Duration
	idleWait     time.Duration
	idleProbe    time.Duration
	drainTimeout time.Duration
	retryRefused time.Duration
	lossTimeout  time.Duration
	skipJS       bool
	floorShapes  bool
	waitQuiet    time.Duration
	env          envFlag
	profile      string
	profileFor   time.Duration
	// The storm-in-a-pod phase (storm.go).
	storm           bool
	stormAlerts     int
	stormLimitMiB   int
	stormGoMemLimit string
	stormSettle     time.Duration
	stormCgroup     bool
}

// envFlag collects -env KEY=VALUE flags for medic's environment.
type envFlag []string

func (e *envFlag) String() string { return strings.Join(*e, " ") }

func (e *envFlag) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

// Targets the figures are compared with (reported, never asserted).
const (
	targetFraction = 0.50
	targetP99Ms    = 25.0
	targetIdleMiB  = 40.0
)

func main() {
	exitIfFloorChild()
	var o options
	o.register(flag.CommandLine)
	flag.Parse()
	if err := validate(&o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	res, err := run(&o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if lost := res.lost(); lost > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d accepted alerts never reached the findings file\n", lost)
		os.Exit(1)
	}
	if !res.Throughput.DrainComplete {
		fmt.Fprintln(os.Stderr, "bench: the throughput phase did not drain")
		os.Exit(1)
	}
	if res.Storm != nil && !res.Storm.Pass {
		fmt.Fprintln(os.Stderr, "bench: the storm-in-a-pod phase failed (see its lines in the table)")
		os.Exit(1)
	}
}

// register defines the harness's flags on fs, each with its default; a
// test gets the same defaults from a FlagSet of its own.
func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.medic, "medic", "", "medic binary to run (default: build ./cmd/medic into a temporary folder)")
	fs.StringVar(&o.data, "data", "", "data folder holding alert-rules.json (default: the module's internal/fixtures/testdata)")
	fs.StringVar(&o.out, "out", "", "where to write the JSON results (default: <repo>/test/bench/results/latest.json; - for none)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary folder (medic's data, logs and findings files)")
	fs.IntVar(&o.alerts, "alerts", 20000, "throughput phase: alerts to post")
	fs.IntVar(&o.batch, "batch", 50, "throughput phase: alerts per webhook request")
	fs.IntVar(&o.clients, "clients", 8, "throughput phase: concurrent HTTP clients (keep-alive)")
	fs.IntVar(&o.jsMsgs, "js-msgs", 100000, "raw JetStream baseline: messages to publish")
	fs.IntVar(&o.jsRuns, "js-runs", 3, "raw JetStream baseline: runs (the median is reported)")
	fs.BoolVar(&o.skipJS, "skip-js", false, "skip the raw JetStream baseline and the pipeline's JetStream floor")
	fs.BoolVar(&o.floorShapes, "floor-shapes", false, "measure the pipeline's JetStream floor in every shape (ack only, no claim, synchronous, pipelined) to say what each store costs")
	fs.IntVar(&o.rate, "rate", 1000, "latency phase: alerts per second")
	fs.IntVar(&o.latBatch, "latency-batch", 10, "latency phase: alerts per request (one request every latency-batch/rate seconds)")
	fs.IntVar(&o.latClients, "latency-clients", 8, "latency phase: HTTP clients the paced requests are handed to")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "latency phase: how long to send")
	fs.DurationVar(&o.poll, "poll", time.Millisecond, "latency phase: how often the findings file is polled when nothing new was read")
	fs.DurationVar(&o.idleWait, "idle-wait", 2*time.Second, "how long after readiness idle RSS is read")
	fs.DurationVar(&o.idleProbe, "idle-probe", 10*time.Second, "after the idle reading, probe /readyz, /healthz and /metrics once a second for this long, as a kubelet and Prometheus would, and read RSS again (0: skip)")
	fs.DurationVar(&o.retryRefused, "retry-refused", 10*time.Minute, "throughput and storm phases: a request answered 503 or 429 is sent again after its Retry-After, as Alertmanager's webhook notifier does, until this long after the phase's first request (0: never; what is refused then is counted as refused)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 60*time.Second, "throughput and storm phases: how long without a new line in the file before the drain is given up (what is missing then counts as lost)")
	fs.DurationVar(&o.lossTimeout, "loss-timeout", 30*time.Second, "latency phase: an accepted alert whose line is not in the file this long after the last send is lost")
	fs.DurationVar(&o.waitQuiet, "wait-quiet", 0, "before starting, wait up to this long for a 2-second window in which other processes use less than a quarter of a core (0: do not wait)")
	fs.StringVar(&o.profile, "profile", "", "write CPU and heap profiles of medic to this folder (http.pprof on): the throughput phase's CPU (-profile-seconds from the first request) and the live heap after it drained; for the storm phase (DIR/storm) also the heap when RSS first reaches 90% of the limit and after -storm-settle")
	fs.DurationVar(&o.profileFor, "profile-seconds", 10*time.Second, "length of the throughput phase's CPU profile")
	fs.BoolVar(&o.storm, "storm", true, "run the storm-in-a-pod phase: the throughput burst again on a fresh medic under a memory limit (a cgroup when one can be made, else GOMEMLIMIT and an RSS watchdog)")
	fs.IntVar(&o.stormAlerts, "storm-alerts", 0, "storm phase: alerts to post (0: as -alerts)")
	fs.IntVar(&o.stormLimitMiB, "storm-limit-mib", 256, "storm phase: the pod's memory limit in MiB (the Helm chart's resources.limits.memory)")
	fs.StringVar(&o.stormGoMemLimit, "storm-gomemlimit", "", "storm phase: GOMEMLIMIT for medic (empty: medic derives it from the cgroup's limit, as in the chart: 192 MiB of 256; without a cgroup, the same figure is set)")
	fs.BoolVar(&o.stormCgroup, "storm-cgroup", true, "storm phase: run medic in a memory cgroup when one can be made (false: GOMEMLIMIT and the RSS watchdog alone)")
	fs.DurationVar(&o.stormSettle, "storm-settle", 20*time.Second, "storm phase: how long after the burst drained the live heap and RSS are read again")
	fs.Var(&o.env, "env", "KEY=VALUE added to medic's environment, repeatable (e.g. -env GODEBUG=gctrace=1 -keep; MEDIC_* variables of the caller are not passed on)")
}

func validate(o *options) error {
	switch {
	case o.alerts < 1 || o.batch < 1 || o.clients < 1:
		return errors.New("-alerts, -batch and -clients must be at least 1")
	case o.rate < 1 || o.latBatch < 1 || o.latClients < 1:
		return errors.New("-rate, -latency-batch and -latency-clients must be at least 1")
	case (o.jsMsgs < 1 || o.jsRuns < 1) && !o.skipJS:
		return errors.New("-js-msgs and -js-runs must be at least 1")
	case o.poll <= 0:
		return errors.New("-poll must be positive")
	case o.stormAlerts < 0 || o.stormLimitMiB < 1:
		return errors.New("-storm-alerts must not be negative, -storm-limit-mib must be positive")
	}
	if o.stormAlerts == 0 {
		o.stormAlerts = o.alerts
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

type results struct {
	Date       string     `json:"date"`
	Commit     string     `json:"commit,omitempty"`
	Binary     string     `json:"medic_binary,omitempty"`
	GoVersion  string     `json:"go_version"`
	Platform   string     `json:"platform"`
	CPUs       int        `json:"cpus"`
	EventBytes int        `json:"event_bytes"`
	RawJS      *jsSummary `json:"raw_jetstream,omitempty"`
	// Floor is the pipeline's JetStream floor (floor.go), measured after
	// the raw baseline.
	Floor *floorResult `json:"pipeline_jetstream_floor,omitempty"`
	// FloorInPod is the same floor under the storm's memory limit.
	FloorInPod *floorResult `json:"pipeline_jetstream_floor_in_a_pod,omitempty"`
	// FloorShapes is the floor in every shape (-floor-shapes).
	FloorShapes []floorResult      `json:"pipeline_jetstream_floor_shapes,omitempty"`
	Fraction    float64            `json:"intake_fraction_of_raw_jetstream,omitempty"`
	IdleRSS     int64              `json:"rss_idle_bytes"`
	IdleRSSAnon int64              `json:"rss_idle_anon_bytes"`
	IdleRSSFile int64              `json:"rss_idle_file_bytes"`
	IdleGoMem   map[string]float64 `json:"go_runtime_idle"`
	// ProbedRSS is idle RSS after ProbeSeconds of what a pod gets with no
	// alerts: /readyz, /healthz and a /metrics scrape every second.
	ProbedRSS     int64            `json:"rss_idle_probed_bytes,omitempty"`
	ProbedRSSAnon int64            `json:"rss_idle_probed_anon_bytes,omitempty"`
	ProbedRSSFile int64            `json:"rss_idle_probed_file_bytes,omitempty"`
	ProbeSeconds  float64          `json:"idle_probe_seconds,omitempty"`
	Throughput    throughputResult `json:"throughput"`
	Latency       latencyResult    `json:"latency"`
	MedicLogged   int              `json:"medic_warnings_logged"`
	OtherCPU      float64          `json:"max_other_processes_cores"`
	Storm         *stormResult     `json:"storm_in_a_pod,omitempty"`
	LoadAvg       string           `json:"load_average_at_start"`
	Targets       targets          `json:"targets"`
	WallSeconds   float64          `json:"wall_seconds"`
}

type targets struct {
	MinFraction     float64 `json:"min_fraction_of_raw_jetstream"`
	MaxP99Ms        float64 `json:"max_p99_end_to_end_ms"`
	MaxIdleRSSMiB   float64 `json:"max_idle_rss_mib"`
	FractionMet     *bool   `json:"fraction_met,omitempty"`
	P99Met          bool    `json:"p99_met"`
	IdleRSSMet      bool    `json:"idle_rss_met"`
	AssertedByBench bool    `json:"asserted"`
}

func run(o *options) (*results, error) {
	began := time.Now()
	root, err := findRoot()
	if err != nil {
		return nil, err
	}
	if o.data == "" {
		o.data = fixtures.Dir()
	}
	rules, err := loadRules(filepath.Join(o.data, "alert-rules.json"))
	if err != nil {
		return nil, fmt.Errorf("load alert rules (set -data): %w", err)
	}
	if o.out == "" {
		o.out = filepath.Join(root, "test", "bench", "results", "latest.json")
	}
	tmp, err := os.MkdirTemp("", "medic-bench-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		logf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	bin := o.medic
	if bin == "" {
		logf("building medic")
		if bin, err = buildMedic(root, tmp); err != nil {
			return nil, err
		}
	}

	res := &results{
		Date:      time.Now().UTC().Format(time.RFC3339),
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
		CPUs:      runtime.NumCPU(),
		LoadAvg:   loadAvg(),
	}
	if o.medic == "" {
		res.Commit = gitDescribe(root)
	} else {
		res.Binary = o.medic
	}
	gen := &alertGen{rules: rules, base: time.Now().UTC().Truncate(time.Second).Add(-time.Hour)}
	evJSON, err := medianEvent(gen)
	if err != nil {
		return nil, err
	}
	res.EventBytes = len(evJSON)

	if o.waitQuiet > 0 {
		waitQuiet(o.waitQuiet)
	}

	// The baseline runs first, while medic is not running, so it has the
	// machine to itself.
	if !o.skipJS {
		var runs []jsResult
		for i := range o.jsRuns {
			dir := filepath.Join(tmp, fmt.Sprintf("raw-jetstream-%d", i))
			flushDirtyPages()
			js, err := rawJetStream(dir, o.jsMsgs, evJSON, config.Default().Bus)
			if err != nil {
				return nil, fmt.Errorf("raw JetStream baseline: %w", err)
			}
			_ = os.RemoveAll(dir)
			logf("raw JetStream run %d/%d: %d messages of %d bytes, %s msg/s (other processes used %.2f cores)",
				i+1, o.jsRuns, o.jsMsgs, len(evJSON), thousands(js.MsgsPerSec), js.CPU.Others)
			runs = append(runs, js)
		}
		sum := summarizeJS(runs)
		res.RawJS = &sum

		if err := runFloors(res, o, tmp, evJSON); err != nil {
			return nil, err
		}
	}

	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o750); err != nil {
			return nil, err
		}
		o.env = append(o.env, "MEDIC_HTTP_PPROF=true")
	}

	// Throughput on a fresh medic.
	m, err := startMedic(bin, filepath.Join(tmp, "throughput"), o.env, nil)
	if err != nil {
		return nil, err
	}
	defer stopQuietly(m)
	if err := m.waitReady(60 * time.Second); err != nil {
		return nil, err
	}
	time.Sleep(o.idleWait)
	idle := procStatus(m.pid(), "VmRSS", "RssAnon", "RssFile")
	res.IdleRSS, res.IdleRSSAnon, res.IdleRSSFile = idle["VmRSS"], idle["RssAnon"], idle["RssFile"]
	res.IdleGoMem = m.goMemStats()
	logf("medic ready, idle RSS %s", fmtMiB(res.IdleRSS))
	if o.idleProbe > 0 {
		m.probe(o.idleProbe)
		probed := procStatus(m.pid(), "VmRSS", "RssAnon", "RssFile")
		res.ProbedRSS, res.ProbedRSSAnon, res.ProbedRSSFile = probed["VmRSS"], probed["RssAnon"], probed["RssFile"]
		res.ProbeSeconds = o.idleProbe.Seconds()
		logf("idle RSS after %s of probes and scrapes: %s", o.idleProbe, fmtMiB(res.ProbedRSS))
	}
	logf("throughput: %d alerts, %d per request, %d clients", o.alerts, o.batch, o.clients)
	res.Throughput, err = runThroughput(m, gen, o)
	if err != nil {
		return nil, fmt.Errorf("throughput phase: %w", err)
	}
	logf("pipeline: %d lines in the findings file after %.1fs", res.Throughput.Lines, res.Throughput.DrainSeconds)
	res.MedicLogged += m.logLines()
	if err := m.stop(30 * time.Second); err != nil {
		return nil, err
	}

	if o.storm {
		if res.Storm, err = runStorm(bin, tmp, gen, o, &res.Throughput); err != nil {
			return nil, fmt.Errorf("storm-in-a-pod phase: %w", err)
		}
	}

	// Latency on another fresh medic, so the first phase's backlog and
	// stream contents do not weigh on it.
	m, err = startMedic(bin, filepath.Join(tmp, "latency"), o.env, nil)
	if err != nil {
		return nil, err
	}
	defer stopQuietly(m)
	if err := m.waitReady(60 * time.Second); err != nil {
		return nil, err
	}
	logf("latency: %d alerts/s for %s, %d alerts per request", o.rate, o.duration, o.latBatch)
	res.Latency, err = runLatency(m, gen, o)
	if err != nil {
		return nil, fmt.Errorf("latency phase: %w", err)
	}
	res.MedicLogged += m.logLines()
	if res.MedicLogged > 0 {
		logf("medic logged %d warning/error lines; see %s (run with -keep to look)", res.MedicLogged, tmp)
	}
	if err := m.stop(30 * time.Second); err != nil {
		return nil, err
	}

	if res.RawJS != nil && res.RawJS.MsgsPerSec > 0 {
		res.Fraction = res.Throughput.AlertsPerSec / res.RawJS.MsgsPerSec
	}
	res.Targets = targets{
		MinFraction: targetFraction, MaxP99Ms: targetP99Ms, MaxIdleRSSMiB: targetIdleMiB,
		P99Met:     res.Latency.EndToEnd.N > 0 && res.Latency.EndToEnd.P99 <= targetP99Ms,
		IdleRSSMet: mib(max(res.IdleRSS, res.ProbedRSS)) <= targetIdleMiB,
	}
	if res.RawJS != nil {
		met := res.Fraction >= targetFraction
		res.Targets.FractionMet = &met
	}
	res.OtherCPU = res.maxOtherCPU()
	res.WallSeconds = time.Since(began).Seconds()

	printTable(os.Stdout, res, o)
	printIssueTable(os.Stdout, res, o)
	if o.out != "-" {
		if err := writeJSON(o.out, res); err != nil {
			return res, err
		}
		logf("wrote %s", o.out)
	}
	return res, nil
}

// medianEvent is the JSON of the event medic stores for one alert of each
// rule, the one of median size, as the raw baseline's message body.
func medianEvent(gen *alertGen) ([]byte, error) {
	var all [][]byte
	for id := range gen.rules {
		ev := alertmanager.EventFromAlert(gen.alert(id), benchExternalURL, alertmanager.DefaultSource, time.Now())
		b, err := json.Marshal(&ev)
		if err != nil {
			return nil, err
		}
		all = append(all, b)
	}
	slices.SortFunc(all, func(a, b []byte) int { return len(a) - len(b) })
	return all[len(all)/2], nil
}

// waitQuiet waits until other processes leave the machine nearly idle for
// two seconds, or until limit.
func waitQuiet(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		before := takeCPU(0)
		time.Sleep(2 * time.Second)
		u := cpuBetween(before, takeCPU(0), runtime.NumCPU())
		if u.Others < 0.25 {
			logf("machine quiet (other processes: %.2f cores)", u.Others)
			return
		}
		if time.Now().After(deadline) {
			logf("machine still busy after %s (other processes: %.2f cores); measuring anyway", limit, u.Others)
			return
		}
		logf("waiting for a quiet machine (other processes: %.2f cores)", u.Others)
	}
}

func stopQuietly(m *medicProc) {
	if m.running() {
		_ = m.stop(10 * time.Second)
	}
}

// loadAvg is /proc/loadavg's first three figures: how busy the machine
// was when the run began.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func gitDescribe(root string) string {
	cmd := exec.Command("git", "describe", "--always", "--dirty")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func writeJSON(path string, res *results) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o640)
}

func printTable(w io.Writer, r *results, o *options) {
	row := func(label, value string) { fmt.Fprintf(w, "%-52s %s\n", label, value) }
	tp, lt := &r.Throughput, &r.Latency
	what := r.Commit
	if r.Binary != "" {
		what = r.Binary
	}
	fmt.Fprintf(w, "\nmedic benchmark (%d cores, %s, %s; %s)\n", r.CPUs, r.GoVersion, r.Platform, what)
	if r.RawJS != nil {
		runs := "(1 run)"
		if n := len(r.RawJS.Runs); n > 1 {
			runs = fmt.Sprintf("(median of %d runs, %s–%s)", n, thousands(r.RawJS.Min), thousands(r.RawJS.Max))
		}
		row(fmt.Sprintf("raw JetStream publish (file store, %s msgs)", fmtKiB(r.RawJS.MsgBytes)),
			fmt.Sprintf("%s msg/s   %s", thousands(r.RawJS.MsgsPerSec), runs))
	}
	intake := fmt.Sprintf("%s alerts/s", thousands(tp.AlertsPerSec))
	if r.RawJS != nil {
		intake += fmt.Sprintf("   = %.0f%% of raw JetStream", 100*r.Fraction)
	}
	row(fmt.Sprintf("webhook intake (batches of %d, %d clients)", o.batch, o.clients), intake)
	row("webhook answer latency", fmt.Sprintf("p50 %s  p99 %s", fmtMs(tp.Answer.P50), fmtMs(tp.Answer.P99)))
	drain := fmt.Sprintf("%s findings/s   (%s alerts in the file after %.1f s)", thousands(tp.FindingsPerSec), thousands(float64(tp.Lines)), tp.DrainSeconds)
	if !tp.DrainComplete {
		drain += "   DID NOT DRAIN"
	}
	row("pipeline (webhook → playbooks → file sink)", drain)
	if f := r.Floor; f != nil {
		row("  its JetStream floor (the same stores, no medic)", fmt.Sprintf("%s findings/s   = %.0f%% of raw JetStream; the pipeline is %s",
			thousands(f.FindingsPerSec), 100*f.FindingsPerSec/r.RawJS.MsgsPerSec, floorOf(tp.FindingsPerSec, f)))
		row("  its events stored, the floor consuming beside", fmt.Sprintf("%s alerts/s   = %.0f%% of raw JetStream; the intake is %.0f%% of it",
			thousands(f.EventsPerSec), 100*f.EventsPerSec/r.RawJS.MsgsPerSec, 100*tp.AlertsPerSec/f.EventsPerSec))
		for _, s := range r.FloorShapes {
			row("    shape: "+string(s.Shape), fmt.Sprintf("%s findings/s   = %.0f%% of raw JetStream", thousands(s.FindingsPerSec), 100*s.FindingsPerSec/r.RawJS.MsgsPerSec))
		}
	}
	row(fmt.Sprintf("end to end at %s alerts/s (webhook → file sink)", thousands(float64(lt.Rate))),
		fmt.Sprintf("p50 %s  p99 %s  max %s", fmtMs(lt.EndToEnd.P50), fmtMs(lt.EndToEnd.P99), fmtMs(lt.EndToEnd.Max)))
	row(fmt.Sprintf("  (%d alerts per request every %s ms)", lt.BatchSize, trimFloat(lt.IntervalMs)),
		fmt.Sprintf("webhook answer p50 %s  p99 %s", fmtMs(lt.Answer.P50), fmtMs(lt.Answer.P99)))
	st := &lt.Stages
	row("  p50 / p99 by stage", fmt.Sprintf("to medic %s / %s, store+engine %s / %s, sink %s / %s",
		fmtMs(st.Webhook.P50), fmtMs(st.Webhook.P99), fmtMs(st.Engine.P50), fmtMs(st.Engine.P99),
		fmtMs(st.Sink.P50), fmtMs(st.Sink.P99)))
	fmt.Fprintf(w, "lost %d   duplicates %d   (throughput phase: lost %d of %s, duplicates %d; at %s/s: lost %d of %s, duplicates %d)\n",
		tp.Lost+lt.Lost, tp.Duplicates+lt.Duplicates,
		tp.Lost, thousands(float64(tp.Accepted)), tp.Duplicates,
		thousands(float64(lt.Rate)), lt.Lost, thousands(float64(lt.Accepted)), lt.Duplicates)
	if len(tp.Refused)+len(lt.Refused) > 0 {
		fmt.Fprintf(w, "refused requests: throughput %v, latency %v\n", tp.Refused, lt.Refused)
	}
	probed := ""
	if r.ProbedRSS > 0 {
		probed = fmt.Sprintf(", after %gs of probes and /metrics scrapes %s (anon %s, file %s)",
			r.ProbeSeconds, fmtMiB(r.ProbedRSS), fmtMiB(r.ProbedRSSAnon), fmtMiB(r.ProbedRSSFile))
	}
	fmt.Fprintf(w, "RSS idle %s (anon %s, file %s%s)   under throughput load %s (intake %s)   at %s/s %s\n",
		fmtMiB(r.IdleRSS), fmtMiB(r.IdleRSSAnon), fmtMiB(r.IdleRSSFile), probed,
		fmtMiB(tp.RSSPeak), fmtMiB(tp.RSSPeakIntake), thousands(float64(lt.Rate)), fmtMiB(lt.RSSPeak))
	jsCPU := "–"
	if r.RawJS != nil {
		var h, oth float64
		for _, run := range r.RawJS.Runs {
			h += run.CPU.Harness / float64(len(r.RawJS.Runs))
			oth += run.CPU.Others / float64(len(r.RawJS.Runs))
		}
		jsCPU = fmt.Sprintf("– / %.2f / %.2f", h, oth)
	}
	fmt.Fprintf(w, "CPU in cores of %d, medic / harness / other processes:  raw JetStream %s   intake %.2f / %.2f / %.2f   at %s/s %.2f / %.2f / %.2f\n",
		r.CPUs, jsCPU, tp.CPUIntake.Medic, tp.CPUIntake.Harness, tp.CPUIntake.Others,
		thousands(float64(lt.Rate)), lt.CPU.Medic, lt.CPU.Harness, lt.CPU.Others)
	if busy := r.maxOtherCPU(); busy >= 0.25 {
		fmt.Fprintf(w, "note: other processes on this machine used up to %.2f of its %d cores during the run; the figures are pessimistic and vary from run to run\n", busy, r.CPUs)
	}
	fraction := "n/a"
	if r.Targets.FractionMet != nil {
		fraction = fmt.Sprintf("%.0f%% %s", 100*r.Fraction, metWord(*r.Targets.FractionMet))
	}
	fmt.Fprintf(w, "targets: ≥%.0f%% of raw JetStream (%s), p99 end-to-end ≤ %.0f ms at %s/s (%s %s), idle RSS ≤ %.0f MiB (%s %s)  (reported, not asserted)\n",
		100*targetFraction, fraction,
		targetP99Ms, thousands(float64(lt.Rate)), fmtMs(lt.EndToEnd.P99), metWord(r.Targets.P99Met),
		targetIdleMiB, fmtMiB(max(r.IdleRSS, r.ProbedRSS)), metWord(r.Targets.IdleRSSMet))
}

// maxOtherCPU is the most CPU other processes took in any measured phase.
func (r *results) maxOtherCPU() float64 {
	m := max(r.Throughput.CPUIntake.Others, r.Latency.CPU.Others)
	if r.Floor != nil {
		m = max(m, r.Floor.CPU.Others)
	}
	if r.RawJS != nil {
		for _, run := range r.RawJS.Runs {
			m = max(m, run.CPU.Others)
		}
	}
	return m
}

func metWord(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}
