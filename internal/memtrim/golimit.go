package memtrim

// fileHeadroom is what the Go memory limit leaves under a container's limit
// for memory the Go runtime does not count but the container is charged
// for: the page cache of what JetStream writes, the pages of medic's binary
// that serving a burst touches (12–20 MiB at a storm's peak since Release
// evicts the rest; 34–56 before) and the kernel's own. Less is slower, not
// safer: with 48 MiB a 200,000-alert storm in 256 MiB drained at 954
// findings/s instead of 3,300–3,600, the kernel reclaiming that page cache
// without pause (docs/benchmarks.md, session 16).
const fileHeadroom = 64 << 20

// GoLimit is the Go memory limit (GOMEMLIMIT) for a container whose memory
// limit is container bytes: 90% of it, but at least fileHeadroom below it,
// and never under half of it (nor over half, for a container smaller than
// the headroom). With the chart's 256 MiB that is 192 MiB;
// 90% (230 MiB) plus the binary's pages under load went past the limit.
func GoLimit(container uint64) uint64 {
	if container <= fileHeadroom {
		return container / 2
	}
	return max(min(container/10*9, container-fileHeadroom), container/2)
}
