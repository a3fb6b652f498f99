package memtrim

import "testing"

func TestGoLimit(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	tests := []struct {
		name            string
		container, want uint64
	}{
		{"the chart's 256 MiB: 64 MiB left for the binary's pages", 256 * mib, 192 * mib},
		{"1 GiB: 90%", 1024 * mib, 1024 * mib / 10 * 9},
		{"640 MiB: 90% leaves exactly the headroom", 640 * mib, 576 * mib},
		{"96 MiB: at least half", 96 * mib, 48 * mib},
		{"smaller than the headroom: half", 32 * mib, 16 * mib},
	}
	for _, tt := range tests {
		if got := GoLimit(tt.container); got != tt.want {
			t.Errorf("%s: GoLimit(%d MiB) = %.1f MiB, want %.1f MiB", tt.name, tt.container/mib, float64(got)/mib, float64(tt.want)/mib)
		}
	}
}
