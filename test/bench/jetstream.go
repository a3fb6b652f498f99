package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/bus"
)

type jsResult struct {
	Messages   int     `json:"messages"`
	MsgBytes   int     `json:"msg_bytes"`
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	MiBPerSec  float64 `json:"mib_per_sec"`
	CPU        cpuUse  `json:"cpu"`
}

// jsSummary is the baseline over several runs; the median is what medic is
// compared with, since other work on a shared machine makes single runs
// vary.
type jsSummary struct {
	Runs       []jsResult `json:"runs"`
	MsgBytes   int        `json:"msg_bytes"`
	MsgsPerSec float64    `json:"median_msgs_per_sec"`
	Min        float64    `json:"min_msgs_per_sec"`
	Max        float64    `json:"max_msgs_per_sec"`
}

func summarizeJS(runs []jsResult) jsSummary {
	s := jsSummary{Runs: runs}
	rates := make([]float64, len(runs))
	for i, r := range runs {
		rates[i] = r.MsgsPerSec
		s.MsgBytes = r.MsgBytes
	}
	slices.Sort(rates)
	s.Min, s.Max = rates[0], rates[len(rates)-1]
	if n := len(rates); n%2 == 1 {
		s.MsgsPerSec = rates[n/2]
	} else {
		s.MsgsPerSec = (rates[n/2-1] + rates[n/2]) / 2
	}
	return s
}

// rawJetStream measures what medic's intake is built on, with nothing of
// medic around it: an embedded server in this process (in-process
// connection, no TCP), a file-storage stream with a deduplication window,
// and one publisher doing PublishMsgAsync with a Nats-Msg-Id per message,
// then waiting for every ack. The settings match medic's bus with its
// default configuration: the events stream's limits (file storage, dedup
// window, retention, size) and 16384 async publishes pending at most.
func rawJetStream(storeDir string, n int, body []byte, bc bus.Config) (jsResult, error) {
	res := jsResult{Messages: n, MsgBytes: len(body)}
	bl, err := startBaseline(storeDir)
	if err != nil {
		return res, err
	}
	defer bl.close()
	js := bl.js
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       "BENCH_RAW",
		Subjects:   []string{"bench.events.>"},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		Duplicates: bc.DedupWindow,
		MaxAge:     bc.Retention,
		MaxBytes:   bc.MaxBytes,
	})
	if err != nil {
		return res, fmt.Errorf("create stream: %w", err)
	}

	publish := func(prefix string, count int) (time.Duration, error) {
		start := time.Now()
		for i := range count {
			m := &nats.Msg{Subject: "bench.events.prometheus_alert", Data: body}
			if _, err := js.PublishMsgAsync(m, jetstream.WithMsgID(prefix+strconv.Itoa(i)), jetstream.WithStallWait(30*time.Second)); err != nil {
				return 0, fmt.Errorf("publish %d: %w", i, err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			return 0, fmt.Errorf("%d acks still pending after 2 minutes", js.PublishAsyncPending())
		}
		return time.Since(start), nil
	}
	// A short warm-up creates the stream's first block and the connection's
	// reply subscription outside the measured part.
	const warm = 1000
	if _, err := publish("warm-", warm); err != nil {
		return res, err
	}
	before := takeCPU(0)
	elapsed, err := publish("msg-", n)
	res.CPU = cpuBetween(before, takeCPU(0), runtime.NumCPU())
	if err != nil {
		return res, err
	}
	if err := bl.publishErr(); err != nil {
		return res, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return res, err
	}
	if got := info.State.Msgs; got != uint64(n+warm) {
		return res, fmt.Errorf("stream holds %d messages, want %d", got, n+warm)
	}
	res.Seconds = elapsed.Seconds()
	res.MsgsPerSec = float64(n) / elapsed.Seconds()
	res.MiBPerSec = res.MsgsPerSec * float64(len(body)) / (1 << 20)
	return res, nil
}

// baseline is an embedded server with the options medic's bus gives its
// own (bus.startEmbedded), a connection to it in process, as medic has, and
// a JetStream context that counts failed async publishes.
type baseline struct {
	ns       *server.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	failed   atomic.Int64
	firstErr atomic.Value
}

func startBaseline(storeDir string) (*baseline, error) {
	ns, err := server.NewServer(&server.Options{
		JetStream:          true,
		StoreDir:           storeDir,
		DontListen:         true,
		NoLog:              true,
		NoSigs:             true,
		JetStreamMaxMemory: 64 << 20,
		MaxPayload:         8 << 20,
	})
	if err != nil {
		return nil, err
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded NATS not ready after 30s")
	}
	b := &baseline{ns: ns}
	if b.nc, err = nats.Connect(ns.ClientURL(), nats.InProcessServer(ns)); err != nil {
		ns.Shutdown()
		return nil, err
	}
	b.js, err = jetstream.New(b.nc,
		jetstream.WithPublishAsyncMaxPending(16384),
		jetstream.WithPublishAsyncTimeout(30*time.Second),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			b.failed.Add(1)
			b.firstErr.CompareAndSwap(nil, err)
		}))
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// publishErr says how many async publishes failed, and the first error.
func (b *baseline) publishErr() error {
	if n := b.failed.Load(); n > 0 {
		return fmt.Errorf("%d publishes failed, first: %v", n, b.firstErr.Load())
	}
	return nil
}

func (b *baseline) close() {
	b.nc.Close()
	b.ns.Shutdown()
	b.ns.WaitForShutdown()
}
