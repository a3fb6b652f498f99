package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/config"
	"github.com/medichq/medic/internal/memtrim"
)

// floorResult is the pipeline's JetStream floor: how fast JetStream alone
// does what medic's pipeline asks of it for one alert, with no medic code
// in between.
type floorResult struct {
	Shape          floorShape `json:"shape"`
	Alerts         int        `json:"alerts"`
	MsgBytes       int        `json:"msg_bytes"`
	EngineWorkers  int        `json:"engine_workers"`
	SinkWorkers    int        `json:"sink_workers"`
	Seconds        float64    `json:"seconds"`
	FindingsPerSec float64    `json:"findings_per_sec"`
	// EventsPerSec is how fast the events were stored, the pipeline
	// consuming beside the publisher: JetStream's side of the intake.
	EventsPerSec float64 `json:"events_per_sec"`
	CPU          cpuUse  `json:"cpu"`
	// Under a pod's limit (floorInPod) only.
	Enforcement     string `json:"enforcement,omitempty"`
	GoMemLimitBytes int64  `json:"gomemlimit_bytes,omitempty"`
	CgroupPeak      int64  `json:"cgroup_peak_bytes,omitempty"`
	OOMKills        int    `json:"oom_kills,omitempty"`
	// SettledHeapInuse is the Go heap in use SettleSeconds after the last
	// finding was acked, read just after the release medic makes once a
	// burst is over (memtrim.Release), the server and its streams still
	// up: what JetStream alone holds of the burst, to set beside medic's
	// settled heap. Zero when the run had no settle.
	SettleSeconds    float64 `json:"settle_seconds,omitempty"`
	SettledHeapInuse int64   `json:"settled_heap_inuse_bytes,omitempty"`
}

// floorShape is how the floor's engine does its part: the floor proper
// (pipelined) and the shapes that take its stores away one at a time, to
// say what each costs (-floor-shapes).
type floorShape string

const (
	// floorPipelined: claim, finding and ack chained on their PubAcks, the
	// worker free for the next event meanwhile. The fastest correct shape
	// found: the event is acked only once its finding is stored.
	floorPipelined floorShape = "pipelined"
	// floorSynchronous: as medic's engine does it today, each worker
	// waiting on a key-value Create and then on a synchronous publish.
	floorSynchronous floorShape = "synchronous"
	// floorNoClaim: the synchronous shape without the claim.
	floorNoClaim floorShape = "no claim"
	// floorAckOnly: the event consumed and acked, nothing else: one stream.
	floorAckOnly floorShape = "ack only"
)

// floorShapes is every shape, in the order -floor-shapes reports them.
var floorShapes = []floorShape{floorAckOnly, floorNoClaim, floorSynchronous, floorPipelined}

// pipelineFloor measures the JetStream work of medic's pipeline for one
// alert reaching the file sink, done by a client that does nothing else:
//
//  1. the intake's async publish of the event with its message ID into a
//     stream shaped like MEDIC_EVENTS (file storage, DiscardNew, the dedup
//     window, retention and size of cfg.Bus);
//  2. the engine's durable pull consumer (explicit ack, cfg.Engine.Workers
//     workers, medic's max-ack-pending and pull size) and, per event, the
//     alert's claim (a create in a key-value bucket shaped like
//     medic_alerts: a message that must be the first on its subject), the
//     finding's publish with its message ID into a stream shaped like
//     MEDIC_FINDINGS, and the event's ack once the finding is stored, in
//     the given shape;
//  3. the sink's durable consumer (cfg.Engine.SinkWorkers workers) acking
//     each finding.
//
// Both payloads are body (the event's JSON; medic's findings are larger),
// stored as the bus stores it: s2-compressed with its encoding header when
// cfg.Bus.Compression says so. The file write, decoding, playbooks,
// redaction and rendering are left out, so no implementation of medic's
// guarantees on this JetStream, with these settings, is likely to be faster
// than the pipelined shape: the pipeline's findings/s divided by that floor
// is the share of the time that is JetStream's, and what is left is
// medic's own. The publisher and the pipeline run at once, as the
// throughput phase's webhook clients and medic do, and the clock stops at
// the sink's last ack.
//
// With settle above zero, the run then waits that long and reads the Go
// heap in use after a collection, with the server and its streams up.
func pipelineFloor(storeDir string, n int, body []byte, cfg config.Config, shape floorShape, settle time.Duration) (floorResult, error) {
	bc := cfg.Bus
	header := func() nats.Header { return nats.Header{} }
	if bc.Compression == config.CompressionS2 {
		body = s2.Encode(nil, body)
		header = func() nats.Header { return nats.Header{bus.HeaderEncoding: {config.CompressionS2}} }
	}
	res := floorResult{Shape: shape, Alerts: n, MsgBytes: len(body), EngineWorkers: cfg.Engine.Workers, SinkWorkers: cfg.Engine.SinkWorkers}
	bl, err := startBaseline(storeDir)
	if err != nil {
		return res, err
	}
	defer bl.close()
	js := bl.js
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, sc := range []jetstream.StreamConfig{
		{Name: "FLOOR_EVENTS", Subjects: []string{"floor.events.>"}, Duplicates: bc.DedupWindow},
		{Name: "FLOOR_FINDINGS", Subjects: []string{"floor.findings.>"}, Duplicates: bc.FindingsWindow()},
	} {
		sc.Storage, sc.Retention, sc.Discard = jetstream.FileStorage, jetstream.LimitsPolicy, jetstream.DiscardNew
		sc.MaxAge, sc.MaxBytes = bc.Retention, bc.MaxBytes
		if _, err := js.CreateStream(ctx, sc); err != nil {
			return res, fmt.Errorf("create stream %s: %w", sc.Name, err)
		}
	}
	claims, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: "floor_alerts", History: 1, TTL: bc.AlertStateTTL, Storage: jetstream.FileStorage, MaxBytes: bc.MaxBytes,
	})
	if err != nil {
		return res, fmt.Errorf("create claims bucket: %w", err)
	}

	// Each consumer as bus.Consume makes it: explicit ack, medic's
	// max-ack-pending, a pull of at most 512, a fixed set of workers fed
	// through an unbuffered channel.
	consume := func(stream, filter string, workers int, handle func(jetstream.Msg) error) (func(), <-chan error, error) {
		maxAckPending := max(workers*8, 256)
		cons, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
			Durable: "floor-" + stream, AckPolicy: jetstream.AckExplicitPolicy, AckWait: bc.AckWait,
			MaxDeliver: -1, FilterSubject: filter, MaxAckPending: maxAckPending, DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("create consumer on %s: %w", stream, err)
		}
		work := make(chan jetstream.Msg)
		stop := make(chan struct{})
		failed := make(chan error, workers)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					select {
					case m := <-work:
						if err := handle(m); err != nil {
							failed <- err
							return
						}
					case <-stop:
						return
					}
				}
			})
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			select {
			case work <- m:
			case <-stop:
			}
		}, jetstream.PullMaxMessages(min(maxAckPending, 512)))
		if err != nil {
			close(stop)
			return nil, nil, fmt.Errorf("consume %s: %w", stream, err)
		}
		return func() { cc.Stop(); close(stop); wg.Wait() }, failed, nil
	}

	var sunk atomic.Int64
	allSunk := make(chan struct{})
	// sinkOne counts an alert that reached the end: the sink's ack, or the
	// event's own in the shape without findings.
	sinkOne := func() {
		if sunk.Add(1) == int64(n) {
			close(allSunk)
		}
	}
	stopSink, sinkFailed, err := consume("FLOOR_FINDINGS", "floor.findings.file", cfg.Engine.SinkWorkers, func(m jetstream.Msg) error {
		if _, err := m.Metadata(); err != nil {
			return err
		}
		if err := m.Ack(); err != nil {
			return fmt.Errorf("ack finding: %w", err)
		}
		sinkOne()
		return nil
	})
	if err != nil {
		return res, err
	}
	defer stopSink()
	claim := []byte{1, 2, 3} // a claim record's size: the claiming sequence, varint-encoded
	// The pipelined engine's async publishes have a JetStream context of
	// their own, so that the publisher's PublishAsyncComplete says when the
	// events alone are stored.
	ejs, err := jetstream.New(bl.nc, jetstream.WithPublishAsyncMaxPending(16384), jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		return res, err
	}
	// stored publishes m asynchronously and waits for its PubAck.
	stored := func(m *nats.Msg, opts ...jetstream.PublishOpt) error {
		fut, err := ejs.PublishMsgAsync(m, append(opts, jetstream.WithStallWait(30*time.Second))...)
		if err != nil {
			return err
		}
		select {
		case <-fut.Ok():
			return nil
		case err := <-fut.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	engineErr := make(chan error, 1)
	report := func(err error) {
		select {
		case engineErr <- err:
		default:
		}
	}
	stopEngine, engineFailed, err := consume("FLOOR_EVENTS", "floor.events.>", cfg.Engine.Workers, func(m jetstream.Msg) error {
		if _, err := m.Metadata(); err != nil {
			return err
		}
		id := m.Headers().Get(jetstream.MsgIDHeader)
		finding := func() *nats.Msg { return &nats.Msg{Subject: "floor.findings.file", Data: body, Header: header()} }
		switch shape {
		case floorAckOnly:
			if err := m.Ack(); err != nil {
				return fmt.Errorf("ack event %s: %w", id, err)
			}
			sinkOne()
			return nil
		case floorPipelined:
			// The worker goes on to the next event; this one's claim, finding
			// and ack follow each other as their PubAcks come. The consumer's
			// max ack pending bounds how many are in flight.
			go func() {
				claimMsg := &nats.Msg{Subject: "$KV.floor_alerts.firing." + id, Data: claim}
				if err := stored(claimMsg, jetstream.WithExpectLastSequencePerSubject(0)); err != nil {
					report(fmt.Errorf("claim %s: %w", id, err))
					return
				}
				if err := stored(finding(), jetstream.WithMsgID(id+".file")); err != nil {
					report(fmt.Errorf("publish finding %s: %w", id, err))
					return
				}
				if err := m.Ack(); err != nil {
					report(fmt.Errorf("ack event %s: %w", id, err))
				}
			}()
			return nil
		}
		if shape == floorSynchronous {
			if _, err := claims.Create(ctx, "firing."+id, claim); err != nil {
				return fmt.Errorf("claim %s: %w", id, err)
			}
		}
		if _, err := js.PublishMsg(ctx, finding(), jetstream.WithMsgID(id+".file")); err != nil {
			return fmt.Errorf("publish finding %s: %w", id, err)
		}
		if err := m.Ack(); err != nil {
			return fmt.Errorf("ack event %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	defer stopEngine()

	// IDs as long as medic's (a SHA-256 in hex), so keys, headers and the
	// duplicate window hold as many bytes.
	id := func(i int) string { return fmt.Sprintf("%064x", i) }
	before := takeCPU(0)
	start := time.Now()
	for i := range n {
		m := &nats.Msg{Subject: "floor.events.prometheus_alert", Data: body, Header: header()}
		if _, err := js.PublishMsgAsync(m, jetstream.WithMsgID(id(i)), jetstream.WithStallWait(30*time.Second)); err != nil {
			return res, fmt.Errorf("publish event %d: %w", i, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
		res.EventsPerSec = float64(n) / time.Since(start).Seconds()
	case <-ctx.Done():
		return res, fmt.Errorf("%d event acks still pending after 5 minutes", js.PublishAsyncPending())
	}
	if err := bl.publishErr(); err != nil {
		return res, err
	}
	select {
	case <-allSunk:
	case err := <-engineFailed:
		return res, fmt.Errorf("engine: %w", err)
	case err := <-engineErr:
		return res, fmt.Errorf("engine: %w", err)
	case err := <-sinkFailed:
		return res, fmt.Errorf("sink: %w", err)
	case <-ctx.Done():
		return res, fmt.Errorf("%d of %d findings acked by the sink after 5 minutes", sunk.Load(), n)
	}
	elapsed := time.Since(start)
	res.CPU = cpuBetween(before, takeCPU(0), runtime.NumCPU())
	// The work was done, not skipped: every event, claim and finding the
	// shape makes is stored once.
	want := []struct {
		stream string
		msgs   uint64
	}{{"FLOOR_EVENTS", uint64(n)}, {"FLOOR_FINDINGS", 0}, {"KV_floor_alerts", 0}}
	if shape != floorAckOnly {
		want[1].msgs = uint64(n)
	}
	if shape == floorPipelined || shape == floorSynchronous {
		want[2].msgs = uint64(n)
	}
	for _, want := range want {
		s, err := js.Stream(ctx, want.stream)
		if err != nil {
			return res, err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return res, err
		}
		if info.State.Msgs != want.msgs {
			return res, fmt.Errorf("stream %s holds %d messages, want %d", want.stream, info.State.Msgs, want.msgs)
		}
	}
	res.Seconds = elapsed.Seconds()
	res.FindingsPerSec = float64(n) / elapsed.Seconds()
	if settle > 0 {
		// Read as the storm phase reads medic's heap (in use, not live), but
		// just after the release medic makes once a burst is over (the
		// collections that empty nats-server's block-buffer pools): the
		// lowest the floor's figure can be, so that medic's is compared
		// with JetStream's best.
		time.Sleep(settle)
		if _, err := memtrim.Release(); err != nil {
			return res, fmt.Errorf("release after the burst: %w", err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		res.SettleSeconds, res.SettledHeapInuse = settle.Seconds(), int64(ms.HeapInuse)
	}
	return res, nil
}

// floorOf says what share of the pipeline's JetStream floor v is.
func floorOf(v float64, f *floorResult) string {
	if f == nil || f.FindingsPerSec == 0 {
		return ""
	}
	return strconv.FormatFloat(100*v/f.FindingsPerSec, 'f', 0, 64) + "% of the floor"
}

// floorChildEnv, when set, makes the harness's binary measure the floor
// and print its result as JSON instead of running the benchmark: how
// floorInPod measures the floor in a process of its own, under a pod's
// memory limit.
const floorChildEnv = "MEDIC_BENCH_FLOOR_CHILD"

// floorChild is what floorInPod hands its child: where to keep the store,
// how many alerts, the file holding the payload, and how long to wait
// before reading the settled heap.
type floorChild struct {
	Dir    string        `json:"dir"`
	Alerts int           `json:"alerts"`
	Body   string        `json:"body"`
	Settle time.Duration `json:"settle"`
}

// exitIfFloorChild makes this process the floor's child when floorInPod
// started it (floorChildEnv is set): it measures, prints and exits. Both
// binaries floorInPod may start call it first: the harness's main and the
// test binary's TestMain.
func exitIfFloorChild() {
	spec := os.Getenv(floorChildEnv)
	if spec == "" {
		return
	}
	if err := runFloorChild(spec); err != nil {
		fmt.Fprintln(os.Stderr, "bench: floor:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runFloorChild measures the floor as spec says and prints the result.
func runFloorChild(spec string) error {
	var c floorChild
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		return fmt.Errorf("%s: %w", floorChildEnv, err)
	}
	body, err := os.ReadFile(c.Body)
	if err != nil {
		return err
	}
	res, err := pipelineFloor(c.Dir, c.Alerts, body, config.Default(), floorPipelined, c.Settle)
	if err != nil {
		return err
	}
	res.GoMemLimitBytes = debug.SetMemoryLimit(-1) // what the runtime ran with
	return json.NewEncoder(os.Stdout).Encode(res)
}

// floorInPod measures the pipeline's JetStream floor in a process held to
// the memory a pod gets, as the storm phase holds medic: in a memory
// cgroup of limit bytes when one can be made, with the Go limit medic
// would derive from it (memtrim.GoLimit), else under that Go limit alone.
// It answers whether what slows the storm is medic's or JetStream's: the
// floor's rate here over its unlimited rate is the most the storm's ratio
// could be. With settle above zero it also reads the heap JetStream holds
// that long after the burst (pipelineFloor), beside the storm's settled
// heap.
func floorInPod(dir string, n int, body []byte, limit int64, settle time.Duration) (floorResult, error) {
	var res floorResult
	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return res, err
	}
	bodyPath := filepath.Join(dir, "body")
	if err := os.WriteFile(bodyPath, body, 0o640); err != nil {
		return res, err
	}
	spec, err := json.Marshal(floorChild{Dir: filepath.Join(dir, "store"), Alerts: n, Body: bodyPath, Settle: settle})
	if err != nil {
		return res, err
	}
	goLimit := memtrim.GoLimit(uint64(limit))
	cg, cgErr := newMemCgroup(limit)
	if cgErr == nil {
		defer cg.remove()
	} else {
		cg = nil
	}
	cmd := cg.command(exe)
	cmd.Env = append(cleanEnv(), floorChildEnv+"="+string(spec), "GOMEMLIMIT="+strconv.FormatUint(goLimit, 10))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("the floor's process: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return res, fmt.Errorf("the floor's process printed %q: %w", stdout.String(), err)
	}
	res.Enforcement = "GOMEMLIMIT alone (no memory cgroup: " + fmt.Sprint(cgErr) + ")"
	if cgErr == nil {
		res.Enforcement, res.CgroupPeak, res.OOMKills = cg.kind(), cg.peak(), cg.oomKills()
	}
	return res, nil
}

// runFloors measures the pipeline's JetStream floor after the raw baseline,
// before medic starts: with as many alerts as the throughput phase it is
// compared with, then (with the storm phase) with the storm's count under
// the storm's limit, and with -floor-shapes in every shape.
func runFloors(res *results, o *options, tmp string, body []byte) error {
	raw := res.RawJS.MsgsPerSec
	measure := func(shape floorShape) (floorResult, error) {
		dir := filepath.Join(tmp, "pipeline-floor")
		defer os.RemoveAll(dir)
		flushDirtyPages()
		f, err := pipelineFloor(dir, o.alerts, body, config.Default(), shape, 0)
		if err != nil {
			return f, fmt.Errorf("the pipeline's JetStream floor (%s): %w", shape, err)
		}
		logf("the pipeline's JetStream floor, %s: %d alerts (%d-byte payloads as stored) in %.1fs, %s findings/s = %.0f%% of raw; events stored at %s/s = %.0f%% of raw (other processes used %.2f cores)",
			shape, f.Alerts, f.MsgBytes, f.Seconds, thousands(f.FindingsPerSec), 100*f.FindingsPerSec/raw, thousands(f.EventsPerSec), 100*f.EventsPerSec/raw, f.CPU.Others)
		return f, nil
	}
	fl, err := measure(floorPipelined)
	if err != nil {
		return err
	}
	res.Floor = &fl
	if o.floorShapes {
		for _, shape := range floorShapes {
			f, err := measure(shape)
			if err != nil {
				return err
			}
			res.FloorShapes = append(res.FloorShapes, f)
		}
	}
	if !o.storm {
		return nil
	}
	dir := filepath.Join(tmp, "pipeline-floor-in-a-pod")
	defer os.RemoveAll(dir)
	flushDirtyPages()
	fp, err := floorInPod(dir, o.stormAlerts, body, int64(o.stormLimitMiB)<<20, o.stormSettle)
	if err != nil {
		return fmt.Errorf("the pipeline's JetStream floor in a pod: %w", err)
	}
	logf("the same floor in a pod (%d MiB, %s, GOMEMLIMIT %s): %d alerts in %.1fs, %s findings/s = %.0f%% of its unlimited rate; heap in use %gs after: %s",
		o.stormLimitMiB, fp.Enforcement, fmtMiB(fp.GoMemLimitBytes), fp.Alerts, fp.Seconds, thousands(fp.FindingsPerSec), 100*fp.FindingsPerSec/fl.FindingsPerSec,
		fp.SettleSeconds, fmtMiB(fp.SettledHeapInuse))
	res.FloorInPod = &fp
	return nil
}
