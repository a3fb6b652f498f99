package interact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
)

// FindingsBucket keeps delivered findings for the buttons and the page.
const FindingsBucket = "medic_findings"

// maxStoredFinding keeps a stored finding under NATS' default 1 MB
// max_payload (an external server may not allow more).
const maxStoredFinding = 900 << 10

// FindingStore keeps findings by ID in the JetStream KV bucket
// medic_findings. It implements sinks.FindingStore.
type FindingStore struct {
	kv jetstream.KeyValue
}

// NewFindingStore opens the bucket; entries expire after retention.
func NewFindingStore(ctx context.Context, open KVFunc, retention time.Duration) (*FindingStore, error) {
	kv, err := open(ctx, FindingsBucket, retention)
	if err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", FindingsBucket, err)
	}
	return &FindingStore{kv: kv}, nil
}

// Put stores f, shortened when it is too big for one KV value: logs keep
// their last lines, images go.
func (s *FindingStore) Put(ctx context.Context, f *event.Finding) error {
	if !validID(f.ID) {
		return fmt.Errorf("finding ID %q cannot be stored", f.ID)
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if len(b) > maxStoredFinding {
		for _, keep := range []int{256 << 10, 64 << 10, 8 << 10, 0} {
			b, err = json.Marshal(compact(f, keep))
			if err != nil {
				return err
			}
			if len(b) <= maxStoredFinding {
				break
			}
		}
		if len(b) > maxStoredFinding {
			return fmt.Errorf("finding %s is too large to store (%d bytes)", f.ID, len(b))
		}
	}
	_, err = s.kv.Put(ctx, "f."+f.ID, b)
	return err
}

// Get returns a stored finding or sinks.ErrFindingNotFound.
func (s *FindingStore) Get(ctx context.Context, id string) (*event.Finding, error) {
	if !validID(id) {
		return nil, sinks.ErrFindingNotFound
	}
	e, err := s.kv.Get(ctx, "f."+id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, sinks.ErrFindingNotFound
	}
	if err != nil {
		return nil, err
	}
	var f event.Finding
	if err := json.Unmarshal(e.Value(), &f); err != nil {
		return nil, fmt.Errorf("stored finding %s: %w", id, err)
	}
	return &f, nil
}

// compact returns a copy of f whose logs keep their last keep bytes and
// whose images are replaced by a note; keep 0 also drops long texts.
func compact(f *event.Finding, keep int) *event.Finding {
	c := *f
	c.Enrichments = make([]event.Enrichment, len(f.Enrichments))
	for i, e := range f.Enrichments {
		ce := e
		ce.Blocks = make([]event.Block, len(e.Blocks))
		for j, b := range e.Blocks {
			switch {
			case b.Kind == event.BlockLog && b.Log != nil && len(b.Log.Text) > keep:
				l := *b.Log
				cut := l.Text[len(l.Text)-keep:]
				if k := strings.IndexByte(cut, '\n'); k >= 0 {
					cut = cut[k+1:]
				}
				l.Text, l.Truncated = cut, true
				b.Log = &l
			case b.Kind == event.BlockImage && b.Image != nil:
				b = event.MarkdownBlock(fmt.Sprintf("(image %s, %d bytes, not kept)", b.Image.Name, len(b.Image.PNG)))
			case keep == 0 && b.Kind == event.BlockMarkdown && len(b.Markdown) > 4096:
				b.Markdown = strings.ToValidUTF8(b.Markdown[:4096], "") + "\n…truncated"
			}
			ce.Blocks[j] = b
		}
		c.Enrichments[i] = ce
	}
	return &c
}
