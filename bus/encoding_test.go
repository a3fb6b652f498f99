package bus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
)

// largeEvent is an alert the size of a real one (2 KiB and more), so the
// bus compresses it; testEvent's are too small to be worth it.
func largeEvent(fp string) event.Event {
	ev := testEvent(fp, event.StatusFiring)
	ev.Description = strings.Repeat("Disk /var/lib/kubelet on node worker-3 will fill up within 4 hours at the current write rate. ", 20)
	ev.Labels["namespace"] = "shop"
	ev.Labels["pod"] = "shop-api-7d9f8c6b5-x7k2p"
	return ev
}

func TestEncodePayload(t *testing.T) {
	t.Parallel()
	json := []byte(`{"id":"x","description":"` + strings.Repeat("the disk is filling up; ", 40) + `"}`)
	noise := make([]byte, 4096) // random bytes: nothing for s2 to shrink
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name        string
		compression string
		data        []byte
		wantEncoded bool
	}{
		{"s2 shrinks JSON", config.CompressionS2, json, true},
		{"none keeps JSON", config.CompressionNone, json, false},
		{"too small to be worth it", config.CompressionS2, []byte(`{"id":"x"}`), false},
		{"incompressible stays as it is", config.CompressionS2, noise, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := &Bus{cfg: Config{Compression: tc.compression}}
			for _, arena := range []*payloadArena{nil, {}} {
				h := nats.Header{}
				out := b.encodePayload(h, tc.data, arena)
				if got := h.Get(HeaderEncoding) != ""; got != tc.wantEncoded {
					t.Fatalf("encoded %v, want %v (header %v)", got, tc.wantEncoded, h)
				}
				if tc.wantEncoded && len(out) >= len(tc.data) {
					t.Fatalf("compressed to %d bytes from %d", len(out), len(tc.data))
				}
				if !tc.wantEncoded && !bytes.Equal(out, tc.data) {
					t.Fatal("a payload stored as it is was changed")
				}
				plainHeader, plain, err := plainPayload(h, out)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(plain, tc.data) {
					t.Fatalf("round trip changed the payload: %q", plain)
				}
				if plainHeader.Get(HeaderEncoding) != "" {
					t.Fatal("the decoded payload's header still names an encoding")
				}
				if tc.wantEncoded && h.Get(HeaderEncoding) == "" {
					t.Fatal("plainPayload changed its caller's header")
				}
			}
		})
	}
}

// Several payloads cut from one arena chunk stay intact: each gets its own
// bytes, and a payload larger than a chunk gets a chunk of its own.
func TestPayloadArenaKeepsEachPayload(t *testing.T) {
	t.Parallel()
	b := &Bus{cfg: Config{Compression: config.CompressionS2}}
	var arena payloadArena
	var in, out [][]byte
	for i := range 200 {
		data := []byte(strings.Repeat(`{"pod":"shop-api-`+strings.Repeat("x", i%17)+`"},`, 20+i%300))
		if i%2 == 1 { // hard to compress: the arena fills and moves to new chunks
			data = fmt.Appendf(data, `{"digest":"%x"}`, sha256.Sum256(data))
			for range i % 40 {
				sum := sha256.Sum256(data[len(data)-64:])
				data = hex.AppendEncode(data, sum[:])
			}
		}
		h := nats.Header{}
		in, out = append(in, data), append(out, b.encodePayload(h, data, &arena))
	}
	for i := range in {
		got, err := s2.Decode(nil, out[i])
		if err != nil || !bytes.Equal(got, in[i]) {
			t.Fatalf("payload %d of the arena was overwritten or corrupt (err %v)", i, err)
		}
	}
	// Released, its chunks serve the next publishes, whose payloads are
	// again each their own.
	if len(arena.full) == 0 {
		t.Fatal("200 payloads fitted in one chunk: the test does not cross a chunk's end")
	}
	arena.release()
	for round := range 3 {
		var next payloadArena
		var outs [][]byte
		for i := range in {
			outs = append(outs, b.encodePayload(nats.Header{}, in[i], &next))
		}
		for i := range in {
			if got, err := s2.Decode(nil, outs[i]); err != nil || !bytes.Equal(got, in[i]) {
				t.Fatalf("round %d: payload %d corrupt after reusing released chunks (err %v)", round, i, err)
			}
		}
		next.release()
	}
}

func TestDecodePayloadRefuses(t *testing.T) {
	t.Parallel()
	huge := s2.Encode(nil, make([]byte, maxDecodedPayload+1))
	for _, tc := range []struct {
		name     string
		encoding string
		data     []byte
		want     string
	}{
		{"an encoding this medic does not know", "zstd", []byte("x"), `Medic-Encoding="zstd", which this medic cannot read`},
		{"a corrupt s2 payload", config.CompressionS2, []byte("\xff\xff\xff\xff\x0fnot s2 at all"), "decode s2 payload"},
		{"more than a message may hold", config.CompressionS2, huge, "more than the 67108864 a message may hold"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := plainPayload(nats.Header{HeaderEncoding: []string{tc.encoding}}, tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// The stored message is s2 with its header; the handler gets the same JSON
// as with bus.compression: none; and a stream holding both (written before
// and after the setting changed, or by two replicas configured apart) is
// read whole.
func TestCompressedAndPlainMessagesReachHandlersAsJSON(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	ctx := context.Background()
	plainBus := openBus(t, func() Config { c := cfg; c.Compression = config.CompressionNone; return c }())
	first := largeEvent("plain")
	if _, err := plainBus.Publish(ctx, []event.Event{first}); err != nil {
		t.Fatal(err)
	}
	plainBus.Close()

	b := openBus(t, cfg)
	second := largeEvent("s2")
	if _, err := b.Publish(ctx, []event.Event{second}); err != nil {
		t.Fatal(err)
	}
	stream, err := b.js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	// What each handler must get: the JSON the bus encoded, which for the
	// plain message is what is stored.
	want := map[string][]byte{}
	for seq, ev := range map[uint64]event.Event{1: first, 2: second} {
		raw, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		enc := raw.Header.Get(HeaderEncoding)
		json := raw.Data
		if seq == 2 {
			if json, err = s2.Decode(nil, raw.Data); err != nil {
				t.Fatalf("message 2 is not s2: %v", err)
			}
		}
		want[ev.ID] = json
		switch {
		case seq == 1 && enc != "":
			t.Fatalf("message 1 (bus.compression: none) stored with %s=%q", HeaderEncoding, enc)
		case seq == 2 && (enc != config.CompressionS2 || len(raw.Data)*2 > len(json)):
			t.Fatalf("message 2 stored with %s=%q, %d bytes; want s2, under half of the JSON's %d", HeaderEncoding, enc, len(raw.Data), len(json))
		}
	}

	got := make(chan *Delivery, 2)
	if _, err := b.Consume(ctx, ConsumerConfig{Stream: EventsStream, Durable: "mixed", FilterSubject: EventsSubjectPrefix + ">"},
		func(_ context.Context, d *Delivery) error { got <- d; return nil }); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case d := <-got:
			var ev event.Event
			if err := event.UnmarshalEvent(d.Data, &ev); err != nil {
				t.Fatalf("handler got a payload that is not an event: %v", err)
			}
			if ev.Description != first.Description || ev.Labels["pod"] != first.Labels["pod"] {
				t.Fatalf("event %s decoded to other content: %+v", ev.ID, ev)
			}
			if !bytes.Equal(d.Data, want[ev.ID]) {
				t.Fatalf("event %s: handler got %d bytes that differ from the JSON published", ev.ID, len(d.Data))
			}
			if enc := d.Header.Get(HeaderEncoding); enc != "" {
				t.Fatalf("handler's header still says %s=%q for a decoded payload", HeaderEncoding, enc)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("message not delivered")
		}
	}
}

// Findings are compressed once for all their sinks, and each sink's copy
// keeps its routing headers.
func TestCompressedFindingKeepsItsHeaders(t *testing.T) {
	t.Parallel()
	b := openBus(t, testConfig(t))
	ctx := context.Background()
	ev := largeEvent("finding")
	ev.ReceivedAt = time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	f := &event.Finding{ID: ev.ID, Title: "Disk filling up", Description: ev.Description, Severity: event.SeverityHigh, Event: ev}
	if err := b.PublishFindings(ctx, []string{"a", "b"}, f); err != nil {
		t.Fatal(err)
	}
	stream, err := b.js.Stream(ctx, FindingsStream)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 2; seq++ {
		raw, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if raw.Header.Get(HeaderEncoding) != config.CompressionS2 || raw.Header.Get(HeaderFindingID) != f.ID ||
			raw.Header.Get(HeaderReceivedAt) != "2026-12-04T03:00:00Z" {
			t.Fatalf("finding message %d headers %v", seq, raw.Header)
		}
		_, plain, err := plainPayload(raw.Header, raw.Data)
		if err != nil {
			t.Fatal(err)
		}
		var got event.Finding
		if err := event.UnmarshalFinding(plain, &got); err != nil || got.ID != f.ID || got.Event.Description != ev.Description {
			t.Fatalf("finding %d decoded to %+v (err %v)", seq, got.ID, err)
		}
	}
}

// A payload this medic cannot read is dead-lettered at once, with the
// header and bytes it was stored with, rather than retried max_deliver
// times; the dead letter says why.
func TestUnreadablePayloadIsDeadLetteredAsStored(t *testing.T) {
	t.Parallel()
	b := openBus(t, testConfig(t))
	ctx := context.Background()
	var handled atomic.Int32
	dead := make(chan string, 1)
	if _, err := b.Consume(ctx, ConsumerConfig{
		Stream: EventsStream, Durable: "unreadable", FilterSubject: EventsSubjectPrefix + ">",
		OnDeadLetter: func(_ *Delivery, reason string) { dead <- reason },
	}, func(context.Context, *Delivery) error { handled.Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: EventSubject(event.KindPrometheusAlert), Data: []byte("zstd bytes"),
		Header: nats.Header{HeaderEncoding: []string{"zstd"}}}
	if _, _, err := b.publishAll(ctx, EventsStream, []*nats.Msg{msg}, []string{"future-medic-1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case reason := <-dead:
		if !strings.Contains(reason, "cannot read") {
			t.Fatalf("dead-letter reason %q", reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not dead-lettered")
	}
	if n := handled.Load(); n != 0 {
		t.Fatalf("the handler ran %d times on an unreadable payload", n)
	}
	dl := lastDeadLetter(t, b)
	if dl.Header.Get(HeaderEncoding) != "zstd" || string(dl.Data) != "zstd bytes" {
		t.Fatalf("dead letter %v %q, want the stored header and payload", dl.Header, dl.Data)
	}
	testkit.Eventually(t, 20*time.Second, "the unreadable message terminated, not pending", func() bool {
		ci, err := b.js.Consumer(ctx, EventsStream, "unreadable")
		return err == nil && ci.CachedInfo().NumAckPending == 0 && ci.CachedInfo().NumPending == 0
	})
}

// A dead letter is parked as JSON: a handler that failed on a compressed
// event parks what it was given, and listing and replaying it work on JSON.
func TestDeadLetterOfCompressedEventIsJSON(t *testing.T) {
	t.Parallel()
	b := openBus(t, testConfig(t))
	ctx := context.Background()
	if _, err := b.Consume(ctx, ConsumerConfig{Stream: EventsStream, Durable: "engine", FilterSubject: EventsSubjectPrefix + ">"},
		func(context.Context, *Delivery) error { return Permanent(errors.New("playbook failed")) }); err != nil {
		t.Fatal(err)
	}
	ev := largeEvent("dead")
	if _, err := b.Publish(ctx, []event.Event{ev}); err != nil {
		t.Fatal(err)
	}
	dl := lastDeadLetter(t, b)
	if enc := dl.Header.Get(HeaderEncoding); enc != "" {
		t.Fatalf("dead letter parked with %s=%q", HeaderEncoding, enc)
	}
	var got event.Event
	if err := event.UnmarshalEvent(dl.Data, &got); err != nil || got.ID != ev.ID {
		t.Fatalf("dead letter payload is not the event's JSON (id %q, err %v)", got.ID, err)
	}
	// One parked compressed by an older path still lists as JSON.
	h := nats.Header{HeaderDeadConsumer: []string{"engine"}, HeaderOriginalStream: []string{EventsStream}}
	data := b.encodePayload(h, dl.Data, nil)
	d := decodeDeadLetter(1, time.Now(), DeadLetterSubjectPrefix+"engine", h, data)
	if d.EventID != ev.ID || d.Header.Get(HeaderEncoding) != "" || !bytes.Equal(d.Data, dl.Data) {
		t.Fatalf("decodeDeadLetter of a compressed payload: event %q, header %v", d.EventID, d.Header)
	}
}

// BenchmarkEncodePayload is the cost bus.compression adds per message: an
// alert's event compressed into a batch's arena, and decoded back.
func BenchmarkEncodePayload(b *testing.B) {
	bus := &Bus{cfg: Config{Compression: config.CompressionS2}}
	ev := largeEvent("bench")
	data, err := event.MarshalEvent(&ev)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		var arena payloadArena
		for b.Loop() {
			bus.encodePayload(nats.Header{}, data, &arena)
		}
	})
	h := nats.Header{}
	enc := bus.encodePayload(h, data, nil)
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := plainPayload(h, enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
