package deploy_test

// A tiny container runtime for one test: it runs the medic binary the way
// the chart's pod runs it — root filesystem read-only and holding only
// /medic (as in the distroless image), the pod's volumes mounted at their
// mountPaths (writable emptyDir/claim directories, read-only ConfigMap and
// Secret files), the ServiceAccount token where kubelet puts it, the user
// and group of the pod's securityContext, its workingDir, args and env.
//
// The test binary re-executes itself in a new mount namespace
// (CLONE_NEWNS) with podRuntimeEnv set; podRuntimeMain then builds the root
// with mounts, chroots into it, drops to the pod's user and execs medic, so
// the test's process handle is medic itself. It needs root (CAP_SYS_ADMIN);
// without it the test that uses it is skipped.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/medichq/medic/internal/testkit"
)

const podRuntimeEnv = "MEDIC_TEST_POD_RUNTIME"

// exitNoNamespaces is the helper's exit code when it may not mount.
const exitNoNamespaces = 77

type podMount struct {
	Source   string `json:"source"` // a host path (directory or file)
	Target   string `json:"target"` // the path in the pod
	ReadOnly bool   `json:"readOnly"`
}

type podRun struct {
	Root    string     `json:"root"`   // an empty host directory that becomes /
	Binary  string     `json:"binary"` // host path of the binary, mounted read-only at Exec
	Exec    string     `json:"exec"`   // the command's path in the pod (/medic)
	Args    []string   `json:"args"`
	Env     []string   `json:"env"`
	WorkDir string     `json:"workDir"`
	UID     int        `json:"uid"`
	GID     int        `json:"gid"`
	Groups  []int      `json:"groups"`
	Mounts  []podMount `json:"mounts"`
}

// startInPod starts spec; the returned command is medic's process.
func startInPod(t *testing.T, spec podRun, stdout, stderr *testkit.SyncBuffer) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running medic in a read-only root needs root (mount namespaces); the chart's paths are still checked by TestWritablePathsAreOnVolumes")
	}
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{podRuntimeEnv + "=" + string(js)}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start a process in a new mount namespace here: %v", err)
	}
	return cmd
}

func podRuntimeMain() {
	var spec podRun
	if err := json.Unmarshal([]byte(os.Getenv(podRuntimeEnv)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "pod runtime:", err)
		os.Exit(2)
	}
	fail := func(code int, format string, args ...any) {
		fmt.Fprintf(os.Stderr, "pod runtime: "+format+"\n", args...)
		os.Exit(code)
	}
	root := spec.Root
	if err := syscall.Mount("tmpfs", root, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=16m,mode=0755"); err != nil {
		fail(exitNoNamespaces, "mount tmpfs on %s: %v", root, err)
	}
	bind := func(src, target string, ro bool) {
		dst := filepath.Join(root, target)
		fi, err := os.Stat(src)
		if err != nil {
			fail(1, "%v", err)
		}
		if fi.IsDir() {
			err = os.MkdirAll(dst, 0o755)
		} else {
			if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
				err = os.WriteFile(dst, nil, 0o644)
			}
		}
		if err != nil {
			fail(1, "mount point %s: %v", dst, err)
		}
		if err := syscall.Mount(src, dst, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			fail(1, "bind %s on %s: %v", src, dst, err)
		}
		if ro {
			if err := syscall.Mount("", dst, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY|syscall.MS_NOSUID|syscall.MS_NODEV, ""); err != nil {
				fail(1, "read-only %s: %v", dst, err)
			}
		}
	}
	bind(spec.Binary, spec.Exec, true)
	for _, m := range spec.Mounts {
		bind(m.Source, m.Target, m.ReadOnly)
	}
	// What a container runtime adds: /proc and /dev/null.
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o555); err != nil {
		fail(1, "%v", err)
	}
	if err := syscall.Mount("proc", filepath.Join(root, "proc"), "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		fail(1, "mount proc: %v", err)
	}
	bind("/dev/null", "/dev/null", false)
	// readOnlyRootFilesystem: true.
	if err := syscall.Mount("", root, "", syscall.MS_REMOUNT|syscall.MS_RDONLY|syscall.MS_NOSUID|syscall.MS_NODEV, ""); err != nil {
		fail(1, "remount / read-only: %v", err)
	}
	if err := syscall.Chroot(root); err != nil {
		fail(1, "chroot: %v", err)
	}
	if err := syscall.Chdir(spec.WorkDir); err != nil {
		fail(1, "workingDir %s: %v", spec.WorkDir, err)
	}
	if err := syscall.Setgroups(spec.Groups); err != nil {
		fail(1, "setgroups: %v", err)
	}
	if err := syscall.Setgid(spec.GID); err != nil {
		fail(1, "setgid: %v", err)
	}
	if err := syscall.Setuid(spec.UID); err != nil {
		fail(1, "setuid: %v", err)
	}
	// A change of credentials clears the parent-death signal; set it again
	// so medic dies with the test.
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0)
	err := syscall.Exec(spec.Exec, append([]string{spec.Exec}, spec.Args...), spec.Env)
	fail(1, "exec %s: %v", spec.Exec, err)
}
