// Package file is the `file` sink: it appends each finding as one JSON line
// to a local file, rotating it by size.
//
// medic redelivers a finding after a crash (the JetStream message was not
// acknowledged), so the sink remembers which findings it has written and
// writes each one exactly once, also across restarts: on open it reads the
// whole file it appends to (and the newest rotated one) and remembers the
// finding IDs found there, as hashes; a line torn by a crash at the end of
// the file is cut off, and its finding, never acknowledged, written again.
package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
)

// Type is the sink type name used in configuration.
const Type = "file"

// rememberKeys bounds the in-memory set of delivered findings so a
// long-running sink does not grow without limit. A key is a 64-bit hash
// (8 bytes in a ring, about 20 in the map), so a full set is about 28 MiB;
// it is reached only by a file, with its newest rotated one, of more than a
// million findings.
const rememberKeys = 1 << 20

// Params are the parameters of the file sink.
type Params struct {
	// Path of the JSON Lines file; parent folders are created.
	Path string `yaml:"path"`
	// Fsync syncs the file after each line, so a delivered finding survives
	// a power loss, at the cost of one disk flush per finding.
	Fsync bool `yaml:"fsync"`
	// MaxSizeMB rotates the file when writing a line would make it larger
	// than this many MiB; 0 means never rotate.
	MaxSizeMB int `yaml:"max_size_mb"`
	// MaxFiles is how many rotated files (<path>.1 … <path>.N) are kept.
	MaxFiles int `yaml:"max_files"`
}

// Defaults returns the parameters used for keys the configuration leaves out.
func Defaults() *Params {
	return &Params{Path: "data/findings.jsonl", MaxFiles: 5}
}

// Validate checks the parameters after decoding.
func (p *Params) Validate() error {
	if p.Path == "" {
		return errors.New("path must not be empty")
	}
	if p.MaxSizeMB < 0 {
		return fmt.Errorf("max_size_mb must be 0 (unlimited) or more, got %d", p.MaxSizeMB)
	}
	if p.MaxFiles < 1 {
		return fmt.Errorf("max_files must be at least 1, got %d", p.MaxFiles)
	}
	return nil
}

// Register adds the file sink type to r.
func Register(r *sinks.Registry) {
	sinks.Add(r, Type,
		"Appends each finding as one JSON line ({sink, deliveredAt, finding}) to a local file, exactly once across restarts, with optional fsync and size-based rotation.",
		Defaults, New)
}

// Sink appends findings to a JSON Lines file. It is safe for concurrent use.
type Sink struct {
	name    string
	path    string
	fsync   bool
	maxSize int64 // bytes; 0 means unlimited
	maxKeep int
	logger  *slog.Logger
	now     func() time.Time

	mu sync.Mutex
	f  *os.File // nil once closed
	// size is what we believe the file's size is; it decides rotation.
	size int64
	// needNewline is set when the file does not end in '\n' (a line torn by
	// a crash or a failed write), so the next line starts on its own.
	needNewline bool
	seen        *keySet
	// scratch is the last record's buffer, reused for the next under mu: a
	// storm writes one line per finding, and a fresh buffer each was the
	// sink's largest allocation.
	scratch []byte
}

// maxScratch bounds the buffer kept between writes; a larger record (a
// finding with big evidence) gets its own.
const maxScratch = 64 << 10

// line is one record of the file. Field order is the order in the file.
type line struct {
	Sink        string         `json:"sink"`
	DeliveredAt time.Time      `json:"deliveredAt"`
	Finding     *event.Finding `json:"finding"`
}

// Deps is what a file sink uses of sinks.Deps.
type Deps interface {
	Logger() *slog.Logger
}

// New starts a file sink: Open with deps' logger.
func New(_ context.Context, name string, p Params, deps Deps) (*Sink, error) {
	return Open(name, p, deps.Logger())
}

// Open opens (creating if needed) the file sink's file and reads it back to
// learn which findings were already delivered. logger may be nil.
func Open(name string, p Params, logger *slog.Logger) (*Sink, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Sink{
		name:    name,
		path:    p.Path,
		fsync:   p.Fsync,
		maxSize: int64(p.MaxSizeMB) << 20,
		maxKeep: p.MaxFiles,
		logger:  logger,
		now:     time.Now,
		seen:    newKeySet(rememberKeys),
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o750); err != nil {
		return nil, fmt.Errorf("create folder for findings file %s: %w", s.path, err)
	}
	start := time.Now()
	if err := s.recover(); err != nil {
		return nil, err
	}
	logger.Debug("findings file read back", "path", s.path, "findings", s.seen.len(), "took", time.Since(start))
	f, size, err := s.openFile()
	if err != nil {
		return nil, err
	}
	s.f, s.size = f, size
	return s, nil
}

// recover reads back the finding IDs of the current file and of the newest
// rotated one, whole (a rotation just before a crash must not let a
// redelivered finding through), and repairs the current file's end.
func (s *Sink) recover() error {
	// Oldest first, so FIFO eviction drops the oldest IDs.
	for _, path := range []string{s.rotated(1), s.path} {
		r, err := scanFile(path, s.seen.add)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if path == s.path && r.cut < r.size {
			if err := os.Truncate(path, r.cut); err != nil {
				return fmt.Errorf("cut the torn last line of findings file %s: %w", path, err)
			}
			// The finding on it was not acknowledged (the line was being
			// written when medic stopped), so it is redelivered and written
			// again, whole.
			s.logger.Warn("findings file ended in a torn line; removed it", "path", path,
				"offset", r.cut, "bytes", r.size-r.cut, "line", truncate(string(r.torn), 120))
		}
	}
	return nil
}

// scan is what scanFile found.
type scan struct {
	size int64 // bytes in the file
	// cut is where the file should end: after its last line that ends in
	// '\n' and is well-formed JSON. cut < size means the end is torn.
	cut  int64
	torn []byte // the start of what lies after cut
}

// scanFile reads path line by line, whole, calling add with the finding ID
// of every well-formed record in file order. Only the IDs are kept (hashed,
// by add), so memory does not grow with the file. A line that is not a
// record (torn by a crash and later followed by a newline, or not medic's)
// is skipped: a finding on a torn line was not acknowledged and will be
// redelivered.
func scanFile(path string, add func(id string)) (scan, error) {
	var r scan
	f, err := os.Open(path)
	if err != nil {
		return r, fmt.Errorf("open findings file %s: %w", path, err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	var buf []byte
	for {
		line, err := readLine(br, &buf)
		if len(line) > 0 {
			start := r.size
			r.size += int64(len(line))
			// A line without its newline was being written when the
			// process stopped; Send never acknowledged it.
			complete := line[len(line)-1] == '\n'
			body := line[:len(line)-1]
			if !complete {
				body = line
			}
			valid := complete && json.Valid(body)
			if valid {
				if id := recordID(body); id != "" {
					add(id)
				}
				r.cut = r.size
			} else if r.cut == start {
				// The first bad line after the last good one: if nothing
				// good follows, the file is cut here.
				r.torn = append(r.torn[:0], body[:min(len(body), 120)]...)
			}
		}
		if errors.Is(err, io.EOF) {
			return r, nil
		}
		if err != nil {
			return r, fmt.Errorf("read findings file %s: %w", path, err)
		}
	}
}

// readLine returns the next line with its '\n' (without one at the end of
// the file), using buf for lines longer than br's buffer. The result is
// valid until the next call.
func readLine(br *bufio.Reader, buf *[]byte) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	*buf = append((*buf)[:0], line...)
	for errors.Is(err, bufio.ErrBufferFull) {
		line, err = br.ReadSlice('\n')
		*buf = append(*buf, line...)
	}
	return *buf, err
}

// recordPrefix is how the sink writes the finding's ID: after the sink name
// and delivery time, "finding" starts with "id" (event.Finding's first field).
var recordPrefix = []byte(`,"finding":{"id":"`)

// recordID returns the finding ID of a well-formed record line, "" for JSON
// that is not one.
func recordID(body []byte) string {
	if i := bytes.Index(body, recordPrefix); i >= 0 {
		rest := body[i+len(recordPrefix):]
		if j := bytes.IndexByte(rest, '"'); j > 0 && bytes.IndexByte(rest[:j], '\\') < 0 {
			return string(rest[:j])
		}
	}
	// Written some other way (by hand, by an older medic): decode.
	var rec struct {
		Finding struct {
			ID string `json:"id"`
		} `json:"finding"`
	}
	if json.Unmarshal(body, &rec) != nil {
		return ""
	}
	return rec.Finding.ID
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// openFile opens the sink's path for appending and returns it with its size.
func (s *Sink) openFile() (*os.File, int64, error) {
	// O_APPEND makes each Write land at the end atomically with respect to
	// other appenders, so lines never interleave.
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, 0, fmt.Errorf("open findings file %s: %w", s.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("stat findings file %s: %w", s.path, err)
	}
	if s.fsync {
		// Make the file's directory entry durable too, not only its data.
		if err := syncDir(filepath.Dir(s.path)); err != nil {
			f.Close()
			return nil, 0, err
		}
	}
	return f, st.Size(), nil
}

// Send appends f as one line unless a line for the same finding ID was
// already written, in which case it returns nil and writes nothing.
func (s *Sink) Send(ctx context.Context, f *event.Finding) error {
	if f == nil {
		return errors.New("file sink: nil finding")
	}
	return s.write(ctx, f.ID, func(_ []byte, deliveredAt time.Time) ([]byte, error) {
		rec, err := json.Marshal(line{Sink: s.name, DeliveredAt: deliveredAt, Finding: f})
		if err != nil {
			return nil, fmt.Errorf("encode finding %s: %w", f.ID, err)
		}
		return rec, nil
	})
}

// SendEncoded appends a finding from its JSON encoding as stored on the bus
// (sinks.EncodedSender). The line is the same as Send writes, assembled
// around the encoding instead of decoding and encoding it again.
func (s *Sink) SendEncoded(ctx context.Context, id string, encoded []byte) error {
	if len(encoded) == 0 {
		return errors.New("file sink: empty finding")
	}
	return s.write(ctx, id, func(rec []byte, deliveredAt time.Time) ([]byte, error) {
		rec = append(rec, `{"sink":`...)
		rec = strconv.AppendQuote(rec, s.name)
		rec = append(rec, `,"deliveredAt":"`...)
		rec = deliveredAt.AppendFormat(rec, time.RFC3339Nano)
		rec = append(rec, `","finding":`...)
		rec = append(rec, encoded...)
		rec = append(rec, '}')
		return rec, nil
	})
}

// write appends the record encode returns as one line, unless a line for
// id was already written. encode may append the record to dst, a buffer the
// sink reuses once the line is written.
func (s *Sink) write(ctx context.Context, id string, encode func(dst []byte, deliveredAt time.Time) ([]byte, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return fmt.Errorf("findings file %s: sink is closed", s.path)
	}
	// An empty ID cannot tell deliveries apart; writing it every time is
	// better than dropping every finding after the first.
	dedup := id != ""
	if dedup && s.seen.has(id) {
		return nil
	}
	rec, err := encode(s.scratch[:0], s.now().UTC())
	if err != nil {
		return err
	}
	rec = append(rec, '\n')
	defer func() { // after the write: nothing keeps rec
		if cap(rec) <= maxScratch {
			s.scratch = rec[:0]
		}
	}()
	if s.maxSize > 0 && s.size > 0 && s.size+int64(len(rec)) > s.maxSize {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	if s.needNewline {
		rec = append([]byte{'\n'}, rec...)
	}
	good := s.size
	n, err := s.f.Write(rec)
	s.size += int64(n)
	if err != nil {
		return s.writeFailed(good, rec[:n], err)
	}
	s.needNewline = false
	if s.fsync {
		if err := s.f.Sync(); err != nil {
			// The line is written but may not be durable. Not remembering
			// it lets the retry write it again: a possible duplicate line
			// is better than a possibly lost finding.
			return fmt.Errorf("sync findings file %s: %w", s.path, err)
		}
	}
	if dedup {
		s.seen.add(id)
	}
	return nil
}

// writeFailed handles a write that failed after written of its bytes
// reached the file (a full disk takes what fits): it cuts the file back to
// good, where the last whole line ended, so a reader never sees half a line
// and the retry appends the line whole. Truncating needs no free space; if
// it fails all the same, the next line starts on a line of its own.
func (s *Sink) writeFailed(good int64, written []byte, err error) error {
	werr := fmt.Errorf("write findings file %s: %w", s.path, err)
	if len(written) == 0 {
		return werr
	}
	if terr := s.f.Truncate(good); terr != nil {
		s.needNewline = written[len(written)-1] != '\n'
		s.logger.Warn("a failed write left part of a line in the findings file, and cutting it off failed too",
			"path", s.path, "offset", good, "bytes", len(written), "err", terr)
		return werr
	}
	s.size = good
	s.logger.Warn("a failed write left part of a line in the findings file; cut it off, the finding is retried whole",
		"path", s.path, "offset", good, "bytes", len(written), "err", err)
	return werr
}

func (s *Sink) rotated(i int) string { return s.path + "." + strconv.Itoa(i) }

// rotate renames <path>.i to <path>.i+1 from the oldest down (the rename
// onto <path>.max_files drops the oldest), then <path> to <path>.1, and opens
// a fresh <path>. The open file is renamed while still open, which POSIX
// allows; if a step fails, the Send fails and medic retries it.
func (s *Sink) rotate() error {
	for i := s.maxKeep - 1; i >= 1; i-- {
		err := os.Rename(s.rotated(i), s.rotated(i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate findings file %s: %w", s.path, err)
		}
	}
	// A missing <path> (removed by hand) just means there is nothing to keep.
	if err := os.Rename(s.path, s.rotated(1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotate findings file %s: %w", s.path, err)
	}
	f, size, err := s.openFile()
	if err != nil {
		return err
	}
	old := s.f
	s.f, s.size, s.needNewline = f, size, false
	if err := old.Close(); err != nil {
		s.logger.Warn("close rotated findings file", "path", s.rotated(1), "err", err)
	}
	return nil
}

// DeduplicatesItself implements sinks.SelfDeduplicating: the file is the
// record of what was delivered, read back at open.
func (s *Sink) DeduplicatesItself() bool { return true }

// Close syncs and closes the file. Further Sends fail; Close is idempotent.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	f := s.f
	s.f = nil
	syncErr := f.Sync()
	if syncErr != nil {
		syncErr = fmt.Errorf("sync findings file %s: %w", s.path, syncErr)
	}
	closeErr := f.Close()
	if closeErr != nil {
		closeErr = fmt.Errorf("close findings file %s: %w", s.path, closeErr)
	}
	return errors.Join(syncErr, closeErr)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open folder %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// keySet is a set of strings that forgets the oldest entry once it holds
// max of them. It keeps 64-bit hashes, not the strings: a finding ID is 32
// bytes or more, and a restart reads back every ID in the file. Two IDs
// share a hash with a chance of about n²/2⁶⁵ (under 10⁻⁷ for a million); the
// seed is random per process, so such a pair would not collide again.
type keySet struct {
	seed maphash.Seed
	max  int
	m    map[uint64]struct{}
	ring []uint64 // grows to max, then is overwritten oldest first
	next int      // where the next key goes in ring once it is full
}

func newKeySet(max int) *keySet {
	return &keySet{seed: maphash.MakeSeed(), max: max, m: make(map[uint64]struct{})}
}

func (k *keySet) hash(key string) uint64 { return maphash.String(k.seed, key) }

func (k *keySet) has(key string) bool {
	_, ok := k.m[k.hash(key)]
	return ok
}

func (k *keySet) add(key string) {
	h := k.hash(key)
	if _, ok := k.m[h]; ok {
		return
	}
	if len(k.ring) < k.max {
		k.ring = append(k.ring, h)
	} else {
		delete(k.m, k.ring[k.next])
		k.ring[k.next] = h
		k.next = (k.next + 1) % len(k.ring)
	}
	k.m[h] = struct{}{}
}

// len is how many keys the set holds.
func (k *keySet) len() int { return len(k.m) }
