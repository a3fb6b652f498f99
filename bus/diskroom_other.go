//go:build !linux

package bus

// diskHasRoom cannot tell off Linux: the healer tries.
func diskHasRoom(string) bool { return true }
