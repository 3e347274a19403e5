//go:build linux && (amd64 || arm64)

package procstate

import "unsafe"

const stubArch = true

// entry is the ELF entry point; see the package comment.
func entry()

func rawExec(path, argv, envp unsafe.Pointer, mask *uint64, pend uint64) uintptr

// The linker reaches entry through -E; this keeps linters from calling it unused.
var _ = entry
