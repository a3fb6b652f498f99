package bus

import (
	"fmt"

	"github.com/medichq/medic/event"
)

// HeaderRoom is what medic keeps free of a message's max payload for its
// headers: NATS counts a message's headers and data against the server's
// max_payload together, and medic's (Nats-Msg-Id, Medic-Finding-Id,
// Medic-Received-At) take about 200 bytes.
const HeaderRoom = 1024

// MaxPayload is the largest message, headers and data together, the server
// accepts: the max_payload it announced when the connection was made (1 MiB
// on a nats-server with defaults, 8 MiB on the embedded one). It is read
// from the connection, not assumed, because an external server may be set
// up either way; 0 while not connected.
func (b *Bus) MaxPayload() int64 {
	if b.nc == nil {
		return 0
	}
	return b.nc.MaxPayload()
}

// FitFinding trims f's evidence so that its message fits the server's max
// payload (event.Finding.TrimToFit): a finding too large for the bus would
// otherwise fail every publish and be dead-lettered with all its evidence,
// where a finding with trimmed log tails still tells the on-call what
// happened. It returns how many bytes were trimmed; 0 when f fit as it was.
func (b *Bus) FitFinding(f *event.Finding) (int, error) {
	limit := b.MaxPayload() - HeaderRoom
	if limit <= 0 {
		return 0, nil // not connected: the publish fails and says so
	}
	trimmed, err := f.TrimToFit(int(limit), int(b.MaxPayload()))
	if err != nil {
		return trimmed, fmt.Errorf("fit finding %s into the bus's max payload of %d bytes: %w", f.ID, b.MaxPayload(), err)
	}
	return trimmed, nil
}
