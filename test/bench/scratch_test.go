package main

import (
	"syscall"
	"testing"
	"time"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestScratchJS(t *testing.T) {
	body := make([]byte, 2427)
	for i := 0; i < 3; i++ {
		c0 := cpu()
		r, err := rawJetStream(t.TempDir(), 100000, body, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v cpu %.2fs = %.0f%%", r, (cpu() - c0).Seconds(), 100*(cpu()-c0).Seconds()/r.Seconds)
	}
}
