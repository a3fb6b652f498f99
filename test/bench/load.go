package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// poster sends webhook bodies over keep-alive connections.
type poster struct {
	client *http.Client
	url    string
}

func newPoster(base string, conns int) *poster {
	tr := &http.Transport{
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &poster{client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, url: base + "/api/alerts"}
}

type answer struct {
	code       int // 0: transport error
	accepted   int
	duplicates int
	err        error
	retryAfter time.Duration // a 503's or 429's Retry-After; 0: none given
}

// refusedForNow reports whether a is medic asking to be asked again later
// (its in-flight or stream-full answers), which Alertmanager does.
func (a answer) refusedForNow() bool {
	return a.err == nil && (a.code == http.StatusServiceUnavailable || a.code == http.StatusTooManyRequests)
}

// postRetrying posts body until it is not refused for now or until passes,
// waiting each answer's Retry-After (1 s when it gives none) in between,
// as Alertmanager's webhook notifier retries; it returns the last answer
// and how many times it sent the body again.
func (p *poster) postRetrying(body []byte, until time.Time) (answer, int) {
	retries := 0
	for {
		a := p.post(body)
		wait := a.retryAfter
		if wait <= 0 {
			wait = time.Second
		}
		if !a.refusedForNow() || time.Now().Add(wait).After(until) {
			return a, retries
		}
		time.Sleep(wait)
		retries++
	}
}

func (p *poster) post(body []byte) answer {
	req, err := http.NewRequest(http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, err: err}
	if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs > 0 {
		a.retryAfter = time.Duration(secs) * time.Second
	}
	if resp.StatusCode == http.StatusOK && err == nil {
		var r struct {
			Accepted   int `json:"accepted"`
			Duplicates int `json:"duplicates"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			a.err = fmt.Errorf("200 answer %q: %w", b, err)
		}
		a.accepted, a.duplicates = r.Accepted, r.Duplicates
	}
	return a
}

func (p *poster) close() { p.client.CloseIdleConnections() }

// answerKey is how a non-200 answer is counted in the results.
func answerKey(a answer) string {
	if a.code == 0 {
		return "transport error"
	}
	return strconv.Itoa(a.code)
}

// tailer reads what was appended to a file since its last call.
type tailer struct {
	f       *os.File
	buf     []byte
	partial []byte
}

func openTail(path string) (*tailer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &tailer{f: f, buf: make([]byte, 256<<10)}, nil
}

func (t *tailer) close() { t.f.Close() }

// read calls fn (which must not keep line) for each complete line appended
// since the last call, and returns how many there were.
func (t *tailer) read(fn func(line []byte)) (int, error) {
	n := 0
	for {
		k, err := t.f.Read(t.buf)
		data := t.buf[:k]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				t.partial = append(t.partial, data...)
				break
			}
			line := data[:i]
			if len(t.partial) > 0 {
				t.partial = append(t.partial, line...)
				line = t.partial
			}
			if fn != nil {
				fn(line)
			}
			n++
			t.partial = t.partial[:0]
			data = data[i+1:]
		}
		if errors.Is(err, io.EOF) || (err == nil && k == 0) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// findingLine is the part of a file sink line the harness reads.
type findingLine struct {
	DeliveredAt time.Time `json:"deliveredAt"`
	Finding     struct {
		CreatedAt time.Time `json:"createdAt"`
		Event     struct {
			ReceivedAt time.Time         `json:"receivedAt"`
			Labels     map[string]string `json:"labels"`
		} `json:"event"`
	} `json:"finding"`
}

// stamps are the times medic wrote into a finding line: when the webhook
// read the body, when the engine made the finding, when the sink wrote it.
type stamps struct {
	received, created, delivered time.Time
}

func parseLine(line []byte) (id int, st stamps, ok bool) {
	var rec findingLine
	if json.Unmarshal(line, &rec) != nil {
		return 0, st, false
	}
	id, err := strconv.Atoi(rec.Finding.Event.Labels["bench_id"])
	if err != nil {
		return 0, st, false
	}
	return id, stamps{rec.Finding.Event.ReceivedAt, rec.Finding.CreatedAt, rec.DeliveredAt}, true
}

// ---- throughput phase ----

type throughputResult struct {
	Alerts        int            `json:"alerts"`
	BatchSize     int            `json:"batch_size"`
	Clients       int            `json:"clients"`
	Requests      int            `json:"requests"`
	MeanBodyBytes int            `json:"mean_body_bytes"`
	Accepted      int            `json:"accepted_alerts"`
	DupAnswered   int            `json:"duplicates_answered"`
	Refused       map[string]int `json:"refused_requests,omitempty"`
	// Retried counts requests sent again after a 503 or 429 (-retry-refused).
	Retried      int     `json:"retried_requests,omitempty"`
	Seconds      float64 `json:"intake_seconds"`
	AlertsPerSec float64 `json:"alerts_per_sec"`
	Answer       dist    `json:"answer_latency"`
	// Drain: from the first request until the file sink held every
	// accepted alert's finding.
	DrainSeconds   float64            `json:"drain_seconds"`
	DrainComplete  bool               `json:"drain_complete"`
	FindingsPerSec float64            `json:"pipeline_findings_per_sec"`
	Lines          int                `json:"lines"`
	Lost           int                `json:"lost"`
	Duplicates     int                `json:"duplicate_lines"`
	RSSPeakIntake  int64              `json:"rss_peak_intake_bytes"`
	RSSPeak        int64              `json:"rss_peak_bytes"`
	RSSHighWater   int64              `json:"rss_high_water_bytes"`
	GoMem          map[string]float64 `json:"go_runtime_after_drain"`
	CPUIntake      cpuUse             `json:"cpu_intake"`
	CPUDrain       cpuUse             `json:"cpu_after_intake_until_drained"`
}

func runThroughput(m *medicProc, gen *alertGen, o *options) (throughputResult, error) {
	r := throughputResult{Alerts: o.alerts, BatchSize: o.batch, Clients: o.clients, Refused: map[string]int{}}
	reqs := batches(1, o.alerts, o.batch)
	bodies := make([][]byte, len(reqs))
	total := 0
	for i, ids := range reqs {
		b, err := gen.body(ids)
		if err != nil {
			return r, err
		}
		bodies[i] = b
		total += len(b)
	}
	r.Requests = len(reqs)
	r.MeanBodyBytes = total / len(reqs)

	tail, err := openTail(m.findings)
	if err != nil {
		return r, err
	}
	defer tail.close()

	p := newPoster(m.base, o.clients)
	defer p.close()
	answers := make([]answer, len(reqs))
	lat := make([]time.Duration, len(reqs))
	jobs := make(chan int, len(reqs))
	for i := range reqs {
		jobs <- i
	}
	close(jobs)

	flushDirtyPages()
	logf("posting %d requests (%.1f MiB) from %d clients", len(reqs), float64(total)/(1<<20), o.clients)
	var prof *profiler
	if o.profile != "" {
		prof = &profiler{dir: o.profile, base: m.base}
	}
	waitProfile := prof.cpu("cpu-throughput.pprof", o.profileFor)
	sampler := sampleRSS(m.pid(), 100*time.Millisecond)
	cpu0 := takeCPU(m.pid())
	start := time.Now()
	retryUntil := start.Add(o.retryRefused)
	var (
		wg      sync.WaitGroup
		retried atomic.Int64
	)
	for range o.clients {
		wg.Go(func() {
			for i := range jobs {
				t0 := time.Now()
				a, n := p.postRetrying(bodies[i], retryUntil)
				answers[i] = a
				lat[i] = time.Since(t0)
				retried.Add(int64(n))
			}
		})
	}
	wg.Wait()
	r.Retried = int(retried.Load())
	intake := time.Since(start)
	cpu1 := takeCPU(m.pid())
	r.CPUIntake = cpuBetween(cpu0, cpu1, runtime.NumCPU())
	r.RSSPeakIntake = sampleNow(sampler, m.pid())
	prof.heap("heap-after-intake.pprof")

	accepted := make(map[int]bool, o.alerts)
	var latOK []time.Duration
	for i, a := range answers {
		if a.code == http.StatusOK && a.err == nil {
			r.Accepted += len(reqs[i])
			r.DupAnswered += a.duplicates
			for _, id := range reqs[i] {
				accepted[id] = true
			}
			latOK = append(latOK, lat[i])
			continue
		}
		r.Refused[answerKey(a)]++
	}
	r.Seconds = intake.Seconds()
	r.AlertsPerSec = float64(r.Accepted) / intake.Seconds()
	r.Answer = summarize(latOK)
	logf("intake: %d of %d alerts accepted in %.2fs (%s alerts/s; requests sent again after a 503 or 429: %d, refused in the end: %v); waiting for the file sink",
		r.Accepted, o.alerts, r.Seconds, thousands(r.AlertsPerSec), r.Retried, r.Refused)

	// Count lines (cheaply, so the harness does not compete with medic for
	// the CPU) until every accepted alert could be there. The bound is on
	// silence, not on the whole drain: a slow pipeline that keeps writing
	// (a storm under its memory limit needs over a minute for 170,000
	// findings) is still delivering, and what it has not written yet is in
	// JetStream, not lost. Only drainTimeout without a new line ends it.
	lines := 0
	deadline := time.Now().Add(o.drainTimeout)
	var lastLine time.Time
	for lines < r.Accepted && time.Now().Before(deadline) && m.running() {
		n, err := tail.read(nil)
		if err != nil {
			return r, err
		}
		if n > 0 {
			lines += n
			lastLine = time.Now()
			deadline = lastLine.Add(o.drainTimeout)
			continue
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.CPUDrain = cpuBetween(cpu1, takeCPU(m.pid()), runtime.NumCPU())
	r.RSSPeak, _ = sampler.stop()
	r.RSSHighWater = procStatus(m.pid(), "VmHWM")["VmHWM"]
	r.GoMem = m.goMemStats()
	waitProfile()
	prof.heap("heap-after-drain.pprof")
	r.DrainComplete = lines >= r.Accepted
	if !lastLine.IsZero() {
		r.DrainSeconds = lastLine.Sub(start).Seconds()
		r.FindingsPerSec = float64(lines) / r.DrainSeconds
	}
	if !r.DrainComplete {
		logf("file sink holds %d lines, %d alerts accepted; giving up after %s without a new line", lines, r.Accepted, o.drainTimeout)
	}

	// Now read the whole file and check every accepted alert is there once.
	seen, n, err := countIDs(m.findings)
	if err != nil {
		return r, err
	}
	r.Lines = n
	for id := range accepted {
		if seen[id] == 0 {
			r.Lost++
		}
	}
	for _, c := range seen {
		if c > 1 {
			r.Duplicates += c - 1
		}
	}
	return r, nil
}

// sampleNow is the sampler's peak so far, or the current RSS if higher.
func sampleNow(s *rssSampler, pid int) int64 { return max(rss(pid), s.peakSoFar()) }

func countIDs(path string) (map[int]int, int, error) {
	t, err := openTail(path)
	if err != nil {
		return nil, 0, err
	}
	defer t.close()
	seen := map[int]int{}
	n, err := t.read(func(line []byte) {
		if id, _, ok := parseLine(line); ok {
			seen[id]++
		}
	})
	return seen, n, err
}

// ---- latency phase ----

type latencyResult struct {
	Rate            int                `json:"rate_alerts_per_sec"`
	BatchSize       int                `json:"alerts_per_request"`
	IntervalMs      float64            `json:"request_interval_ms"`
	DurationSeconds float64            `json:"duration_seconds"`
	Requests        int                `json:"requests"`
	Sent            int                `json:"sent_alerts"`
	Accepted        int                `json:"accepted_alerts"`
	Refused         map[string]int     `json:"refused_requests,omitempty"`
	AchievedRate    float64            `json:"achieved_alerts_per_sec"`
	MaxDispatchLag  float64            `json:"max_dispatch_lag_ms"`
	Answer          dist               `json:"answer_latency"`
	EndToEnd        dist               `json:"end_to_end"`
	EndToEndSink    dist               `json:"end_to_end_by_delivered_at"`
	Stages          stageDists         `json:"stages"`
	PollMs          float64            `json:"tail_poll_ms"`
	Lost            int                `json:"lost"`
	Duplicates      int                `json:"duplicate_lines"`
	Unknown         int                `json:"unexpected_lines"`
	RSSPeak         int64              `json:"rss_peak_bytes"`
	RSSMean         int64              `json:"rss_mean_bytes"`
	CPU             cpuUse             `json:"cpu_while_sending"`
	GoMem           map[string]float64 `json:"go_runtime_at_end"`
}

// stageDists splits the end-to-end latency by the times medic stamps on a
// finding. Clocks are the same machine's, so the stages add up.
type stageDists struct {
	// Webhook: request sent → body read by medic (connection, HTTP).
	Webhook dist `json:"sent_to_received"`
	// Engine: received → finding created (decode, store the events,
	// engine consumer fetch, playbooks).
	Engine dist `json:"received_to_finding_created"`
	// Sink: created → line written (publish the finding, sink consumer
	// fetch, decode, write).
	Sink dist `json:"finding_created_to_written"`
	// Tail: written → read by the harness (its poll interval).
	Tail dist `json:"written_to_seen_by_harness"`
}

// latencyBase keeps the latency phase's bench_ids apart from the
// throughput phase's.
const latencyBase = 10_000_000

func runLatency(m *medicProc, gen *alertGen, o *options) (latencyResult, error) {
	interval := time.Duration(float64(time.Second) * float64(o.latBatch) / float64(o.rate))
	nReq := int(o.duration / interval)
	r := latencyResult{
		Rate: o.rate, BatchSize: o.latBatch, IntervalMs: float64(interval) / float64(time.Millisecond),
		DurationSeconds: o.duration.Seconds(), Requests: nReq, Sent: nReq * o.latBatch,
		PollMs: float64(o.poll) / float64(time.Millisecond), Refused: map[string]int{},
	}
	if nReq < 1 {
		return r, fmt.Errorf("-duration %s is shorter than one request interval (%s)", o.duration, interval)
	}
	reqs := batches(latencyBase, r.Sent, o.latBatch)
	bodies := make([][]byte, len(reqs))
	for i, ids := range reqs {
		b, err := gen.body(ids)
		if err != nil {
			return r, err
		}
		bodies[i] = b
	}

	// The tailer notes when each alert's line appeared.
	tail, err := openTail(m.findings)
	if err != nil {
		return r, err
	}
	defer tail.close()
	var (
		mu        sync.Mutex
		seenAt    = make([]time.Time, r.Sent)
		delivered = make([]stamps, r.Sent)
		seenCount = make([]int, r.Sent)
		unknown   int
		stopTail  atomic.Bool
		tailErr   error
		tailDone  = make(chan struct{})
	)
	go func() {
		defer close(tailDone)
		for !stopTail.Load() {
			var now time.Time
			mu.Lock()
			n, err := tail.read(func(line []byte) {
				if now.IsZero() {
					now = time.Now()
				}
				id, d, ok := parseLine(line)
				k := id - latencyBase
				if !ok || k < 0 || k >= len(seenAt) {
					unknown++
					return
				}
				if seenCount[k] == 0 {
					seenAt[k], delivered[k] = now, d
				}
				seenCount[k]++
			})
			mu.Unlock()
			if err != nil {
				tailErr = err
				return
			}
			if n == 0 {
				time.Sleep(o.poll)
			}
		}
	}()

	p := newPoster(m.base, o.latClients)
	defer p.close()
	sentAt := make([]time.Time, len(reqs))
	answers := make([]answer, len(reqs))
	lat := make([]time.Duration, len(reqs))
	lag := make([]time.Duration, len(reqs))
	sched := make([]time.Time, len(reqs))
	jobs := make(chan int, len(reqs))
	var wg sync.WaitGroup
	for range o.latClients {
		wg.Go(func() {
			for i := range jobs {
				t0 := time.Now()
				sentAt[i], lag[i] = t0, t0.Sub(sched[i])
				answers[i] = p.post(bodies[i])
				lat[i] = time.Since(t0)
			}
		})
	}

	flushDirtyPages()
	sampler := sampleRSS(m.pid(), 100*time.Millisecond)
	start := time.Now().Add(20 * time.Millisecond)
	cpu0 := takeCPU(m.pid())
	for i := range reqs {
		sched[i] = start.Add(time.Duration(i) * interval)
		if d := time.Until(sched[i]); d > 0 {
			time.Sleep(d)
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	r.CPU = cpuBetween(cpu0, takeCPU(m.pid()), runtime.NumCPU())

	var lastSend time.Time
	var latOK []time.Duration
	accepted := make([]bool, r.Sent)
	for i, a := range answers {
		lastSend = later(lastSend, sentAt[i])
		r.MaxDispatchLag = max(r.MaxDispatchLag, float64(lag[i])/float64(time.Millisecond))
		if a.code == http.StatusOK && a.err == nil {
			r.Accepted += len(reqs[i])
			latOK = append(latOK, lat[i])
			for _, id := range reqs[i] {
				accepted[id-latencyBase] = true
			}
			continue
		}
		r.Refused[answerKey(a)]++
	}
	r.Answer = summarize(latOK)
	r.AchievedRate = float64(r.Accepted) / lastSend.Sub(sentAt[0]).Seconds()
	logf("sent %d alerts in %d requests (%s accepted/s); waiting for their findings", r.Sent, len(reqs), thousands(r.AchievedRate))

	// Wait until every accepted alert is in the file, for at most
	// lossTimeout after the last send.
	deadline := lastSend.Add(o.lossTimeout)
	missing := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for k, ok := range accepted {
			if ok && seenCount[k] == 0 {
				n++
			}
		}
		return n
	}
	for missing() > 0 && time.Now().Before(deadline) && m.running() {
		time.Sleep(20 * time.Millisecond)
	}
	// A little longer, so a duplicate written right after would be seen.
	time.Sleep(200 * time.Millisecond)
	stopTail.Store(true)
	<-tailDone
	r.RSSPeak, r.RSSMean = sampler.stop()
	r.GoMem = m.goMemStats()
	if tailErr != nil {
		return r, tailErr
	}

	var e2e, e2eSink, toReceived, toCreated, toDelivered, toSeen []time.Duration
	for i, ids := range reqs {
		for _, id := range ids {
			k := id - latencyBase
			if !accepted[k] {
				continue
			}
			if seenCount[k] == 0 {
				r.Lost++
				continue
			}
			r.Duplicates += seenCount[k] - 1
			d := delivered[k]
			e2e = append(e2e, seenAt[k].Sub(sentAt[i]))
			e2eSink = append(e2eSink, d.delivered.Sub(sentAt[i]))
			toReceived = append(toReceived, d.received.Sub(sentAt[i]))
			toCreated = append(toCreated, d.created.Sub(d.received))
			toDelivered = append(toDelivered, d.delivered.Sub(d.created))
			toSeen = append(toSeen, seenAt[k].Sub(d.delivered))
		}
	}
	r.Unknown = unknown
	r.EndToEnd = summarize(e2e)
	r.EndToEndSink = summarize(e2eSink)
	r.Stages = stageDists{
		Webhook: summarize(toReceived), Engine: summarize(toCreated),
		Sink: summarize(toDelivered), Tail: summarize(toSeen),
	}
	return r, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
