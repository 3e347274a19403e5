package cli

// stackPad is the frame reserveStack takes. The main goroutine reaches
// Main on a 4 KiB stack, and the start path needs about 10 KiB at its
// deepest (the GPU check's runtime detection, without a GPU), so the
// runtime would grow the stack twice on the way, to 8 KiB in the checks
// and to 16 KiB in the GPU check, each time copying every frame on it and
// reading each frame's stack maps from tables not yet in any cache: about
// 40 µs of a no-GPU start that takes about 200 µs past the minimal Go
// program's (measured, 2 CPUs, a VM; README, "Start-time cost"). With a
// frame of stackPad at the start, the stack grows once, at once to
// 16 KiB, with two frames to copy. With a GPU the probe's report takes the
// stack to 32 KiB later; that start costs milliseconds, not microseconds.
const stackPad = 12 << 10

// padWritten is never set. reserveStack's pad lives in a branch on it, so
// that the frame is taken (the stack check in the function's prologue
// grows the stack for it) but never written: zeroing it would fault in
// pages of the new stack that the start path does not all use (a page
// fault costs about 3 µs on this VM).
var padWritten bool

// reserveStack makes the calling goroutine's stack large enough for the
// start path (see stackPad). It must be called where the stack is shallow:
// first thing in Main.
//
//go:noinline
func reserveStack() {
	if padWritten {
		var pad [stackPad]byte
		keepFrame(pad[:])
	}
}

// keepFrame keeps reserveStack's pad (and so its frame) from being
// optimised away.
//
//go:noinline
func keepFrame([]byte) {}
