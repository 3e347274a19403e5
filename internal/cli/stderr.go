package cli

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/child"
)

// StderrWriterArgv0 is argv[0] of nss-entrypoint started again to write
// text on the descriptor 2 it inherits (the entrypoint's), when that is a
// file on a filesystem that may hang: a write there can wait in the kernel
// for good, in a process the target does not inherit (a sibling of the
// entrypoint) rather than in the entrypoint, whose exec would then wait
// for it. Like the delegate, the mode also needs check.DelegateEnv.
const StderrWriterArgv0 = "nss-entrypoint-stderr"

// writeStderr is that process: it writes texts on descriptor 2 and exits,
// or exits by itself a grace after its deadline.
func writeStderr(texts []string, deadline time.Time) int {
	time.AfterFunc(pastDeadline(deadline, helperGrace), func() { os.Exit(3) })
	for _, t := range texts {
		writeAll(2, []byte(t))
	}
	return 0
}

// stderrMayHang reports whether descriptor 2 is a regular file on a
// filesystem that may hang (FUSE, NFS, ...), or on one the mount table does
// not show. Nothing it asks reaches the filesystem (check.StatFD), and the
// mount is looked up in the mount table. A pipe, a terminal, a socket or a
// device (/dev/null) never waits on a filesystem's server. st and err are
// what check.StatFD said of descriptor 2.
func stderrMayHang(e *check.Env, st check.FDStat, err error) bool {
	switch {
	case err == unix.EBADF:
		return false // closed: nothing is written
	case err != nil:
		// statx refused (a kernel before 4.11, an old seccomp profile):
		// only what cannot be seeked is known to be safe.
		return check.Seekable(2)
	case st.Type != unix.S_IFREG:
		return false
	}
	typ, ok := "", false
	if st.HasMountID {
		typ, ok = e.FSTypeOfMount(st.MountID)
	} else {
		typ, ok = e.FSTypeOfDevice(st.DevMajor, st.DevMinor)
	}
	return !ok || check.Unsafe(typ)
}

// writeFromHelper writes b on descriptor 2 from a StderrWriterArgv0
// process, waiting for it at most stderrBudget. Where no helper may be
// started (processes or descriptors are scarce) b is not written: a
// write from here could hold up the start for good.
func (h *handover) writeFromHelper(b []byte) {
	if h.scarceFDs || h.e.NoHelpers != "" {
		return
	}
	deadline := time.Now().Add(stderrBudget)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	child.Run(ctx, child.Spec{Path: "/proc/self/exe", Argv: []string{StderrWriterArgv0, string(b)},
		Env: check.WithDelegateDeadline(h.environ, deadline), InheritStderr: true, StdoutLimit: 4096, StderrLimit: 0,
		Groups: h.e.Children})
}
