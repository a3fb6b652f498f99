package bus

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"

	"github.com/medichq/medic/config"
)

// HeaderEncoding says how a message's payload is encoded; a message without
// it is plain JSON (what medic wrote before bus.compression, and what it
// writes with bus.compression: none). The value is a bus.compression name.
const HeaderEncoding = "Medic-Encoding"

const (
	// minCompressed is the smallest payload worth compressing: below it s2
	// saves a few bytes and the header costs about 20.
	minCompressed = 256
	// maxDecodedPayload bounds the size a compressed payload may claim, so a
	// corrupt or hostile message cannot make a consumer allocate gigabytes.
	// NATS's own payload limit is 1 MiB by default and 64 MiB at most, and
	// JSON never compresses 64-fold in practice.
	maxDecodedPayload = 64 << 20
)

// encodePayload returns the payload to store for data, compressed when
// bus.compression asks for it and it helps, and sets h's HeaderEncoding to
// match. Why compress at all: nats-server keeps every block it wrote in the
// last 10 s in memory (its write cache, 8 MiB at a time), so in a storm the
// bytes written per second are what fill a 256 MiB pod; s2 writes events and
// findings at about 45% of their JSON size for a few microseconds each
// (BenchmarkEncodePayload).
//
// The compressed bytes are cut from arena when one is given (the events of
// one request), else allocated.
func (b *Bus) encodePayload(h nats.Header, data []byte, arena *payloadArena) []byte {
	if b.cfg.Compression != config.CompressionS2 || len(data) < minCompressed {
		return data
	}
	need := s2.MaxEncodedLen(len(data))
	if need < 0 {
		return data // too large for s2's block format; NATS refuses it anyway
	}
	var out []byte
	if arena != nil {
		out = s2.Encode(arena.next(need), data)
		arena.used(len(out))
	} else {
		out = s2.Encode(nil, data)
	}
	if len(out) >= len(data) {
		return data
	}
	h.Set(HeaderEncoding, config.CompressionS2)
	return out
}

// payloadArena hands out the space of a publish's compressed payloads from
// a few large chunks rather than one allocation per message, and gives the
// chunks back for the next publish once JetStream stored the messages. The
// NATS client copies a message into its write buffer before PublishMsg
// returns (natsWriter.appendBufs), so only publishAll, which may send the
// same messages again after reclaiming room, still reads them; once it
// returned they are free. After a failed publish the chunks are left to the
// garbage collector: a rare path, not worth reasoning about what a failure
// half-way through still holds.
type payloadArena struct {
	buf  []byte
	full [][]byte // chunks filled before buf
}

// arenaChunk is the size of a fresh chunk: about 60 compressed alerts.
const arenaChunk = 64 << 10

// arenaChunks are chunks given back by release; each is arenaChunk long.
var arenaChunks = sync.Pool{New: func() any { return new([arenaChunk]byte) }}

// next returns room for n bytes.
func (a *payloadArena) next(n int) []byte {
	if cap(a.buf)-len(a.buf) < n {
		if a.buf != nil {
			a.full = append(a.full, a.buf)
		}
		if n <= arenaChunk {
			a.buf = arenaChunks.Get().(*[arenaChunk]byte)[:0]
		} else {
			a.buf = make([]byte, 0, n) // one unusually large payload
		}
	}
	return a.buf[len(a.buf) : len(a.buf)+n]
}

// used marks n bytes of the last next as taken.
func (a *payloadArena) used(n int) { a.buf = a.buf[:len(a.buf)+n] }

// release gives the arena's chunks back for other publishes; what next
// returned must no longer be used.
func (a *payloadArena) release() {
	for _, c := range append(a.full, a.buf) {
		if cap(c) == arenaChunk {
			arenaChunks.Put((*[arenaChunk]byte)(c[:arenaChunk]))
		}
	}
	a.buf, a.full = nil, nil
}

// decodePayload returns the JSON of a stored message whatever it was stored
// as, and whether it had to decode it. An encoding this medic does not know
// (a newer medic's) or a corrupt payload is an error the consumer dead-letters
// rather than retries.
func decodePayload(h nats.Header, data []byte) ([]byte, bool, error) {
	switch enc := h.Get(HeaderEncoding); enc {
	case "":
		return data, false, nil
	case config.CompressionS2:
		n, err := s2.DecodedLen(data)
		if err != nil {
			return nil, false, fmt.Errorf("decode %s payload: %w", enc, err)
		}
		if n > maxDecodedPayload {
			return nil, false, fmt.Errorf("decode %s payload: it claims %d bytes, more than the %d a message may hold", enc, n, maxDecodedPayload)
		}
		out, err := s2.Decode(make([]byte, n), data)
		if err != nil {
			return nil, false, fmt.Errorf("decode %s payload: %w", enc, err)
		}
		return out, true, nil
	default:
		return nil, false, fmt.Errorf("payload encoded as %s=%q, which this medic cannot read (written by a newer version?)", HeaderEncoding, enc)
	}
}

// plainPayload decodes a stored message's payload in place of the original:
// the returned header is a copy without HeaderEncoding when it decoded, so the
// pair stays consistent wherever it goes next (a dead letter, a replay).
func plainPayload(h nats.Header, data []byte) (nats.Header, []byte, error) {
	out, decoded, err := decodePayload(h, data)
	if err != nil || !decoded {
		return h, data, err
	}
	plain := make(nats.Header, len(h))
	for k, vs := range h {
		if k != HeaderEncoding {
			plain[k] = vs
		}
	}
	return plain, out, nil
}
