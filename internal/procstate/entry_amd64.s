#include "textflag.h"

// entry is the ELF entry point (go build -ldflags -E): it records the
// process state the Go runtime is about to change, then jumps to the
// runtime's own entry point with the stack as the kernel left it but for
// argv's place: it moves six words down to make room for runtimeEnv.
TEXT ·entry(SB),NOSPLIT|NOFRAME,$0
	// The kernel's stack: argc, argv[0..argc-1], NULL, envp[0..], NULL.
	MOVQ	0(SP), AX
	LEAQ	16(SP)(AX*8), BX
	MOVQ	BX, ·envp(SB)
	// rt_sigprocmask(SIG_BLOCK, NULL, &sigMask, 8)
	MOVQ	$14, AX
	MOVQ	$0, DI
	MOVQ	$0, SI
	LEAQ	·sigMask(SB), DX
	MOVQ	$8, R10
	SYSCALL
	// rt_sigpending(&sigWait, 8); the blocked ones among them would be
	// delivered once the runtime unblocks them: take them off (each
	// rt_sigtimedwait with a zero timeout dequeues one, until EAGAIN) and
	// record them in sigPend, to be made pending again in the exec.
	MOVQ	$127, AX
	LEAQ	·sigWait(SB), DI
	MOVQ	$8, SI
	SYSCALL
	CMPQ	AX, $0
	JNE	pendskip
	MOVQ	·sigMask(SB), AX
	ANDQ	AX, ·sigWait(SB)
	CMPQ	·sigWait(SB), $0
	JEQ	pendskip
waitloop:
	// rt_sigtimedwait(&sigWait, NULL, &zeroTime, 8)
	MOVQ	$128, AX
	LEAQ	·sigWait(SB), DI
	MOVQ	$0, SI
	LEAQ	·zeroTime(SB), DX
	MOVQ	$8, R10
	SYSCALL
	CMPQ	AX, $-4
	JEQ	waitloop
	CMPQ	AX, $1
	JLT	pendskip
	MOVQ	AX, CX
	SUBQ	$1, CX
	MOVQ	$1, AX
	SHLQ	CX, AX
	ORQ	AX, ·sigPend(SB)
	JMP	waitloop
pendskip:
	// For signals 1..64: rt_sigaction(sig, NULL, &sigact, 8); SIG_IGN is 1.
	MOVQ	$1, R12
sigloop:
	MOVQ	$13, AX
	MOVQ	R12, DI
	MOVQ	$0, SI
	LEAQ	·sigact(SB), DX
	MOVQ	$8, R10
	SYSCALL
	CMPQ	AX, $0
	JNE	signext
	MOVQ	·sigact(SB), AX
	CMPQ	AX, $1
	JNE	signext
	MOVQ	R12, CX
	SUBQ	$1, CX
	MOVQ	$1, AX
	SHLQ	CX, AX
	ORQ	AX, ·sigIgn(SB)
signext:
	INCQ	R12
	CMPQ	R12, $65
	JLT	sigloop
	// For descriptors 0..2: fcntl(fd, F_GETFD) fails with EBADF when closed.
	MOVQ	$0, R12
fdloop:
	MOVQ	$72, AX
	MOVQ	R12, DI
	MOVQ	$1, SI
	SYSCALL
	CMPQ	AX, $-9
	JNE	fdnext
	MOVQ	R12, CX
	MOVQ	$1, AX
	SHLQ	CX, AX
	ORQ	AX, ·stdClose(SB)
fdnext:
	INCQ	R12
	CMPQ	R12, $3
	JLT	fdloop
	// prlimit64(0, RLIMIT_NOFILE, NULL, &nofile)
	MOVQ	$302, AX
	MOVQ	$0, DI
	MOVQ	$7, SI
	MOVQ	$0, DX
	LEAQ	·nofile(SB), R10
	SYSCALL
	CMPQ	AX, $0
	JNE	done
	MOVQ	$1, ·nofileOK(SB)
done:
	// Per-thread state a new thread does not get, which the exec, run on
	// whichever thread, must hand on: prctl(PR_GET_PDEATHSIG, &pdeathSig);
	// and, where the policy has SCHED_RESET_ON_FORK (0x40000000; threads
	// then start at SCHED_OTHER, nice 0), sched_getparam and getpriority.
	MOVQ	$157, AX
	MOVQ	$2, DI
	LEAQ	·pdeathSig(SB), SI
	SYSCALL
	MOVQ	$145, AX
	MOVQ	$0, DI
	SYSCALL
	CMPQ	AX, $0
	JLT	schedskip
	MOVQ	AX, CX
	ANDQ	$0x40000000, CX
	JEQ	schedskip
	MOVQ	AX, ·schedPolicy(SB)
	MOVQ	$143, AX
	MOVQ	$0, DI
	LEAQ	·schedParam(SB), SI
	SYSCALL
	MOVQ	$140, AX
	MOVQ	$0, DI
	MOVQ	$0, SI
	SYSCALL
	MOVQ	AX, ·schedNice(SB)
	MOVQ	$1, ·schedReset(SB)
schedskip:
	MOVQ	$1, ·captured(SB)
	// The Go runtime's own settings (see runtimeEnv): argc, argv[0..argc-1]
	// and argv's NULL move down six words (the stack stays 16-byte
	// aligned), and the six words freed between argv's NULL and envp[0]
	// point at runtimeEnv's six entries. The kernel's own envp vector
	// (·envp above) is left as it was.
	MOVQ	0(SP), CX
	ADDQ	$2, CX
	MOVQ	SP, SI
	LEAQ	-48(SP), DI
shift:
	MOVQ	0(SI), AX
	MOVQ	AX, 0(DI)
	ADDQ	$8, SI
	ADDQ	$8, DI
	DECQ	CX
	JNE	shift
	LEAQ	·runtimeEnv(SB), AX
	MOVQ	$6, CX
envloop:
	MOVQ	AX, 0(DI)
	ADDQ	$16, AX
	ADDQ	$8, DI
	DECQ	CX
	JNE	envloop
	SUBQ	$48, SP
	XORQ	AX, AX
	XORQ	CX, CX
	XORQ	DX, DX
	XORQ	SI, SI
	XORQ	DI, DI
	XORQ	R10, R10
	XORQ	R11, R11
	XORQ	R12, R12
	JMP	_rt0_amd64_linux(SB)

// rawExec sets the signal mask to *mask, makes each signal in pend pending
// on this thread (tgkill), and calls execve. On failure it takes those
// signals off again, restores the mask and returns the errno. It is one assembly function so that the
// goroutine cannot move to another thread between the two.
// func rawExec(path, argv, envp unsafe.Pointer, mask *uint64, pend uint64) uintptr
TEXT ·rawExec(SB),NOSPLIT,$0-48
	// rt_sigprocmask(SIG_SETMASK, mask, &oldMask, 8)
	MOVQ	$14, AX
	MOVQ	$2, DI
	MOVQ	mask+24(FP), SI
	LEAQ	·oldMask(SB), DX
	MOVQ	$8, R10
	SYSCALL
	MOVQ	pend+32(FP), R13
	CMPQ	R13, $0
	JEQ	exec
	// getpid, gettid
	MOVQ	$39, AX
	SYSCALL
	MOVQ	AX, R8
	MOVQ	$186, AX
	SYSCALL
	MOVQ	AX, R9
	MOVQ	$1, R12
pendloop:
	MOVQ	R12, CX
	SUBQ	$1, CX
	MOVQ	$1, AX
	SHLQ	CX, AX
	TESTQ	AX, R13
	JEQ	pendnext
	// tgkill(pid, tid, sig)
	MOVQ	$234, AX
	MOVQ	R8, DI
	MOVQ	R9, SI
	MOVQ	R12, DX
	SYSCALL
pendnext:
	INCQ	R12
	CMPQ	R12, $65
	JLT	pendloop
exec:
	// The main thread's parent-death signal and reset-on-fork scheduling
	// (see entry): prctl(PR_SET_PDEATHSIG, sig), sched_setscheduler(0,
	// policy, &param), setpriority(PRIO_PROCESS, 0, nice) (getpriority's
	// raw value is 20 - nice).
	MOVQ	·pdeathSig(SB), SI
	CMPQ	SI, $0
	JEQ	nopdeath
	MOVQ	$157, AX
	MOVQ	$1, DI
	SYSCALL
nopdeath:
	CMPQ	·schedReset(SB), $0
	JEQ	noresched
	MOVQ	$144, AX
	MOVQ	$0, DI
	MOVQ	·schedPolicy(SB), SI
	LEAQ	·schedParam(SB), DX
	SYSCALL
	MOVQ	$141, AX
	MOVQ	$0, DI
	MOVQ	$0, SI
	MOVQ	$20, DX
	SUBQ	·schedNice(SB), DX
	SYSCALL
noresched:
	MOVQ	$59, AX
	MOVQ	path+0(FP), DI
	MOVQ	argv+8(FP), SI
	MOVQ	envp+16(FP), DX
	SYSCALL
	NEGQ	AX
	MOVQ	AX, ret+40(FP)
	// Still here: take back the signals made pending above, or the
	// restored mask would let them be delivered to the runtime.
	MOVQ	pend+32(FP), R13
	CMPQ	R13, $0
	JEQ	restore
undo:
	// rt_sigtimedwait(&pend, NULL, &zeroTime, 8)
	MOVQ	$128, AX
	LEAQ	pend+32(FP), DI
	MOVQ	$0, SI
	LEAQ	·zeroTime(SB), DX
	MOVQ	$8, R10
	SYSCALL
	CMPQ	AX, $-4
	JEQ	undo
	CMPQ	AX, $0
	JGT	undo
restore:
	// Restore the mask.
	MOVQ	$14, AX
	MOVQ	$2, DI
	LEAQ	·oldMask(SB), SI
	MOVQ	$0, DX
	MOVQ	$8, R10
	SYSCALL
	RET
