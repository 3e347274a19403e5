//go:build !linux || !(amd64 || arm64)

package procstate

import "unsafe"

// stubArch is false where there is no entry stub: nothing is captured.
const stubArch = false

func rawExec(path, argv, envp unsafe.Pointer, mask *uint64, pend uint64) uintptr { return 0 }
