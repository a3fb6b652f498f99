package alertmanager

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/event"
)

// manyAlerts is a webhook body of n one-label alerts, 25 bytes each: the
// most alerts, and so the most decoded memory, a body of its size can hold.
func manyAlerts(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"version":"4","status":"firing","receiver":"medic","alerts":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"labels":{"a":"%d"}}`, i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func TestScanBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		body   string
		max    int
		alerts int
	}{
		{name: "empty", body: ``},
		{name: "no alerts", body: `{"version":"4","alerts":[]}`},
		{name: "three", body: `{"alerts":[{"labels":{"a":"b"}}, {}, {"x":[1,2,3]}]}`, alerts: 3},
		{name: "scalars and whitespace", body: "{ \"alerts\" : [ 1 ,\n\t\"two\" , null ] }", alerts: 3},
		{name: "brackets and escaped quotes in strings", body: `{"alerts":[{"a":"],[\"{"}, {"b":"\\"}]}`, alerts: 2},
		{name: "escaped backslashes before a quote", body: `{"alerts":[{"a":"x\\\\"},{"b":"\\\"],[\\"}]}`, alerts: 2},
		{name: "any key counts", body: `{"ALERTS":[{},{}],"x":{"alerts":[{},{},{}]}}`, alerts: 2},
		{name: "two arrays add up", body: `{"alerts":[{}],"alerts":[{},{}]}`, alerts: 3},
		{name: "a top-level array is not a webhook", body: `[{},{},{}]`},
		{name: "stops past the cap", body: `{"alerts":[{},{},{},{},{}]}`, max: 2, alerts: 3},
		{name: "cut off", body: `{"alerts":[{},{"a":"`, alerts: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := scanBody([]byte(tt.body), tt.max)
			if s.Alerts != tt.alerts {
				t.Errorf("%d alerts, want %d", s.Alerts, tt.alerts)
			}
			if s.Cost < int64(len(tt.body)) {
				t.Errorf("cost %d is less than the body (%d bytes)", s.Cost, len(tt.body))
			}
		})
	}
}

// allocated is what f allocates, in bytes, the garbage collector's work
// aside. Not for parallel tests: the counter is the process's.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDecodeCostCoversTheDecoder holds decodeCost's constants to what
// decoding a body, converting it and encoding its events for the bus
// allocate, for the two extremes: one-label alerts and kube-prometheus
// ones. The estimate must cover the allocations and stay within three
// times them, or the caps would refuse what fits.
func TestDecodeCostCoversTheDecoder(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
	}{{"one-label alerts", manyAlerts(20000)}, {"kube-prometheus alerts", benchBody(t, 2000)}} {
		var events []event.Event
		got := allocated(func() {
			msg, err := Decode(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			events = ToEvents(msg, DefaultSource, time.Now())
			enc := event.NewBatchEncoder()
			for i := range events {
				if _, err := enc.Encode(&events[i]); err != nil {
					t.Fatal(err)
				}
			}
		})
		if raceEnabled {
			got /= 2 // the race detector's shadow allocations (1.9 times over)
		}
		est := scanBody(tc.body, 0).Cost
		t.Logf("%s: %d bytes of body, %d allocated (%d per alert), estimated %d", tc.name, len(tc.body), got, got/uint64(len(events)), est)
		if uint64(est) < got || uint64(est) > 3*got {
			t.Errorf("%s: estimated %d bytes, allocated %d", tc.name, est, got)
		}
	}
}

// TestOversizedRequestIsRefusedBeforeDecoding: one request of 150,000
// one-label alerts (3.7 MiB, the body limit raised to let it in) is
// answered 413 naming webhook.max_alerts_per_request, having allocated
// little more than the body's buffer: the count is decided by a scan of the
// body, not by decoding it. Without the caps a fifth of that request
// allocates ten times the bound (the whole one: 830 MB; it drove RSS to
// 1.1 GiB).
func TestOversizedRequestIsRefusedBeforeDecoding(t *testing.T) {
	serve := func(opts Options, body []byte) (*httptest.ResponseRecorder, uint64) {
		opts.MaxBodyBytes = 8 << 20
		h, err := NewHandler(opts, &recordingPublisher{}, testLogger(t), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		alloc := allocated(func() {
			req := httptest.NewRequest(http.MethodPost, "/api/alerts", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(rec, req)
		})
		return rec, alloc
	}

	body := manyAlerts(150_000)
	rec, alloc := serve(Options{Caps: Caps{MaxAlerts: DefaultMaxAlertsPerRequest, MaxDecodedBytes: DefaultMaxDecodedBytes}}, body)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413: %.300s", rec.Code, rec.Body)
	}
	ans := decodeBody[errorBody](t, rec)
	if ans.Limit != LimitMaxAlerts || ans.Max != DefaultMaxAlertsPerRequest || !strings.Contains(ans.Error, "raise webhook.max_alerts_per_request") {
		t.Errorf("answer %s does not name the limit, its value and how to raise it", rec.Body)
	}
	// The body's buffer, twice (it doubles as the body arrives, from
	// initialBodyBuffer), and 1 MiB for the recorder, logger and answer.
	bound := 2*uint64(len(body)) + 1<<20
	t.Logf("refused %d-byte request: %d bytes allocated (bound %d)", len(body), alloc, bound)
	if alloc > bound {
		t.Errorf("refusing allocated %d bytes, more than the body and 1 MiB (%d)", alloc, bound)
	}

	rec, uncapped := serve(Options{}, manyAlerts(30_000))
	t.Logf("30,000 alerts without the caps: status %d, %d bytes allocated", rec.Code, uncapped)
	if uncapped < 10*bound {
		t.Errorf("without the caps a fifth of the request allocated only %d bytes; the test does not show what the caps save", uncapped)
	}
}

// TestRequestAtTheCapsIsAccepted: with the default caps, a request of
// exactly DefaultMaxAlertsPerRequest kube-prometheus alerts, which nearly
// fills the default 4 MiB body, is within the decoded-bytes caps and is
// stored whole; one alert more is refused.
func TestRequestAtTheCapsIsAccepted(t *testing.T) {
	t.Parallel()
	opts := Options{Caps: Caps{MaxAlerts: DefaultMaxAlertsPerRequest, MaxDecodedBytes: DefaultMaxDecodedBytes,
		Budget: NewDecodeBudget(DefaultMaxInFlightDecodedBytes, time.Second)}}
	f := newFixture(t, opts)
	body := benchBody(t, DefaultMaxAlertsPerRequest)
	if int64(len(body)) > DefaultMaxBodyBytes {
		t.Fatalf("the body (%d bytes) is over the default body limit", len(body))
	}
	rec := f.post(t, body, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %.300s", rec.Code, rec.Body)
	}
	if got := decodeBody[Response](t, rec).Accepted; got != DefaultMaxAlertsPerRequest || len(f.pub.events()) != got {
		t.Fatalf("accepted %d, published %d, want %d", got, len(f.pub.events()), DefaultMaxAlertsPerRequest)
	}

	f = newFixture(t, opts)
	if rec := f.post(t, benchBody(t, DefaultMaxAlertsPerRequest+1), nil); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("one alert over the cap: status %d", rec.Code)
	}
	if n := len(f.pub.events()); n != 0 {
		t.Fatalf("%d events published for a refused request", n)
	}
}

// TestDecodeBudget: a budget of one and a half requests' estimated bytes
// (webhook.max_in_flight_decoded_bytes) holds one request at a time.
func TestDecodeBudget(t *testing.T) {
	t.Parallel()
	body := readPayload(t, "captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json")
	cost := scanBody(body, 0).Cost
	checkBusy(t, Options{Caps: Caps{Budget: NewDecodeBudget(cost*3/2, 50*time.Millisecond)}}, body)
}

func TestNoDecodeBudget(t *testing.T) {
	t.Parallel()
	var none *DecodeBudget
	if NewDecodeBudget(0, time.Second) != none {
		t.Fatal("max 0 must mean no budget")
	}
	if !none.acquire(context.Background(), 1<<40) {
		t.Fatal("a nil budget refused a request")
	}
	none.release(1 << 40)
}
