//go:build !linux

package memtrim

// Release returns the Go heap's free pages to the OS. Dropping the
// executable's pages is done on Linux only.
func Release() (Result, error) {
	freeHeap()
	return Result{}, nil
}

// Wake does nothing: idle paging is Linux's.
func Wake() {}

// Pressure does nothing: paging advice is Linux's.
func Pressure(bool) {}

// Awake is false: without idle paging there is nothing to wake from.
func Awake() bool { return false }
