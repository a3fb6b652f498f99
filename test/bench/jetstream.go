package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type jsResult struct {
	Messages   int     `json:"messages"`
	MsgBytes   int     `json:"msg_bytes"`
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	MiBPerSec  float64 `json:"mib_per_sec"`
}

// rawJetStream measures what medic's intake is built on, with nothing of
// medic around it: an embedded server in this process (in-process
// connection, no TCP), a file-storage stream with a deduplication window,
// and one publisher doing PublishMsgAsync with a Nats-Msg-Id per message,
// then waiting for every ack. The settings that matter match medic's bus:
// file storage, the same dedup window, 16384 async publishes pending.
func rawJetStream(storeDir string, n int, body []byte, dedup time.Duration) (jsResult, error) {
	res := jsResult{Messages: n, MsgBytes: len(body)}
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
		return res, err
	}
	ns.Start()
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	if !ns.ReadyForConnections(30 * time.Second) {
		return res, errors.New("embedded NATS not ready after 30s")
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns))
	if err != nil {
		return res, err
	}
	defer nc.Close()

	var pubErrs atomic.Int64
	var firstErr atomic.Value
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(16384),
		jetstream.WithPublishAsyncTimeout(30*time.Second),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			pubErrs.Add(1)
			firstErr.CompareAndSwap(nil, err)
		}))
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:       "BENCH_RAW",
		Subjects:   []string{"bench.events.>"},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		Duplicates: dedup,
		MaxBytes:   4 << 30,
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
	elapsed, err := publish("msg-", n)
	if err != nil {
		return res, err
	}
	if e := pubErrs.Load(); e > 0 {
		return res, fmt.Errorf("%d publishes failed, first: %v", e, firstErr.Load())
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
