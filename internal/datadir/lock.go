// Package datadir guards medic's data folder: one medic process owns it at
// a time.
//
// Two medics on one data folder (a second `medic serve` started by hand, a
// Deployment rolled with a ReadWriteMany volume) would open the same
// JetStream store and append to the same findings file: two embedded
// servers corrupt each other's store, and two file sinks each believe they
// alone know what was written. An exclusive flock on a lock file, taken
// before anything in the folder is opened, turns that into an error at start.
package datadir

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// LockFile is the name of the lock file in the data folder.
const LockFile = "medic.lock"

// Lock is a held data-folder lock.
type Lock struct {
	f    *os.File
	path string
}

// InUseError says which process holds the data folder.
type InUseError struct {
	Dir string
	// PID and Started are what the holder wrote; zero when it had not yet
	// written them (it took the lock a moment ago) or the file was edited.
	PID     int
	Started time.Time
}

func (e *InUseError) Error() string {
	who := "another medic (pid unknown)"
	if e.PID > 0 {
		who = "medic pid " + strconv.Itoa(e.PID)
	}
	if !e.Started.IsZero() {
		who += " (started " + e.Started.Format(time.RFC3339) + ")"
	}
	return fmt.Sprintf("data dir %s is in use by %s; stop it or use another data dir (data_dir in the configuration)", e.Dir, who)
}

// Acquire takes the exclusive lock on dir's lock file without waiting, and
// records this process's PID and start time in it. The lock is released by
// Release or when the process ends, however it ends (kill -9 included):
// the kernel drops flocks with the last open descriptor.
func Acquire(dir string) (*Lock, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open data dir lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			ie := &InUseError{Dir: dir}
			ie.PID, ie.Started = readHolder(path)
			return nil, ie
		}
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	rec := fmt.Sprintf("pid %d\nstarted %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(rec), 0)
	}
	if err != nil {
		// The lock holds regardless; only the message to a second medic
		// loses its PID.
		err = fmt.Errorf("write data dir lock %s: %w", path, err)
		f.Close()
		return nil, err
	}
	return &Lock{f: f, path: path}, nil
}

// Release unlocks and closes the lock file. The file stays: removing it
// would let a process that opened it just before lock an unlinked inode
// while a third locks a new file.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	cerr := l.f.Close()
	l.f = nil
	if err = errors.Join(err, cerr); err != nil {
		return fmt.Errorf("release data dir lock %s: %w", l.path, err)
	}
	return nil
}

// readHolder parses what the holder wrote into the lock file.
func readHolder(path string) (pid int, started time.Time) {
	f, err := os.Open(path)
	if err != nil {
		return 0, time.Time{}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "pid":
			pid, _ = strconv.Atoi(v)
		case "started":
			started, _ = time.Parse(time.RFC3339, v)
		}
	}
	return pid, started
}
