#include "textflag.h"

// entry is the ELF entry point (go build -ldflags -E): it records the
// process state the Go runtime is about to change, then jumps to the
// runtime's own entry point with the stack as the kernel left it but for
// argv's place: it moves six words down to make room for runtimeEnv.
TEXT ·entry(SB),NOSPLIT|NOFRAME,$0
	// The kernel's stack: argc, argv[0..argc-1], NULL, envp[0..], NULL.
	MOVD	0(RSP), R0
	ADD	$2, R0, R0
	LSL	$3, R0, R0
	MOVD	RSP, R1
	ADD	R1, R0, R0
	MOVD	R0, ·envp(SB)
	// rt_sigprocmask(SIG_BLOCK, NULL, &sigMask, 8)
	MOVD	$135, R8
	MOVD	$0, R0
	MOVD	$0, R1
	MOVD	$·sigMask(SB), R2
	MOVD	$8, R3
	SVC
	// rt_sigpending(&sigWait, 8); the blocked ones among them would be
	// delivered once the runtime unblocks them: take them off (each
	// rt_sigtimedwait with a zero timeout dequeues one, until EAGAIN) and
	// record them in sigPend, to be made pending again in the exec.
	MOVD	$136, R8
	MOVD	$·sigWait(SB), R0
	MOVD	$8, R1
	SVC
	CBNZ	R0, pendskip
	MOVD	·sigWait(SB), R4
	MOVD	·sigMask(SB), R5
	AND	R5, R4, R4
	MOVD	R4, ·sigWait(SB)
	CBZ	R4, pendskip
waitloop:
	// rt_sigtimedwait(&sigWait, NULL, &zeroTime, 8)
	MOVD	$137, R8
	MOVD	$·sigWait(SB), R0
	MOVD	$0, R1
	MOVD	$·zeroTime(SB), R2
	MOVD	$8, R3
	SVC
	CMN	$4, R0
	BEQ	waitloop
	CMP	$1, R0
	BLT	pendskip
	SUB	$1, R0, R4
	MOVD	$1, R5
	LSL	R4, R5, R5
	MOVD	·sigPend(SB), R4
	ORR	R5, R4, R4
	MOVD	R4, ·sigPend(SB)
	B	waitloop
pendskip:
	// For signals 1..64: rt_sigaction(sig, NULL, &sigact, 8); SIG_IGN is 1.
	MOVD	$1, R12
sigloop:
	MOVD	$134, R8
	MOVD	R12, R0
	MOVD	$0, R1
	MOVD	$·sigact(SB), R2
	MOVD	$8, R3
	SVC
	CMP	$0, R0
	BNE	signext
	MOVD	·sigact(SB), R0
	CMP	$1, R0
	BNE	signext
	SUB	$1, R12, R4
	MOVD	$1, R5
	LSL	R4, R5, R5
	MOVD	·sigIgn(SB), R6
	ORR	R5, R6, R6
	MOVD	R6, ·sigIgn(SB)
signext:
	ADD	$1, R12, R12
	CMP	$65, R12
	BLT	sigloop
	// For descriptors 0..2: fcntl(fd, F_GETFD) fails with EBADF when closed.
	MOVD	$0, R12
fdloop:
	MOVD	$25, R8
	MOVD	R12, R0
	MOVD	$1, R1
	SVC
	CMN	$9, R0
	BNE	fdnext
	MOVD	$1, R5
	LSL	R12, R5, R5
	MOVD	·stdClose(SB), R6
	ORR	R5, R6, R6
	MOVD	R6, ·stdClose(SB)
fdnext:
	ADD	$1, R12, R12
	CMP	$3, R12
	BLT	fdloop
	// prlimit64(0, RLIMIT_NOFILE, NULL, &nofile)
	MOVD	$261, R8
	MOVD	$0, R0
	MOVD	$7, R1
	MOVD	$0, R2
	MOVD	$·nofile(SB), R3
	SVC
	CMP	$0, R0
	BNE	done
	MOVD	$1, R4
	MOVD	R4, ·nofileOK(SB)
done:
	// Per-thread state a new thread does not get (see entry_amd64.s):
	// prctl(PR_GET_PDEATHSIG, &pdeathSig); with SCHED_RESET_ON_FORK,
	// sched_getparam and getpriority.
	MOVD	$167, R8
	MOVD	$2, R0
	MOVD	$·pdeathSig(SB), R1
	SVC
	MOVD	$120, R8
	MOVD	$0, R0
	SVC
	CMP	$0, R0
	BLT	schedskip
	AND	$0x40000000, R0, R1
	CBZ	R1, schedskip
	MOVD	R0, ·schedPolicy(SB)
	MOVD	$121, R8
	MOVD	$0, R0
	MOVD	$·schedParam(SB), R1
	SVC
	MOVD	$141, R8
	MOVD	$0, R0
	MOVD	$0, R1
	SVC
	MOVD	R0, ·schedNice(SB)
	MOVD	$1, R4
	MOVD	R4, ·schedReset(SB)
schedskip:
	MOVD	$1, R4
	MOVD	R4, ·captured(SB)
	// The Go runtime's own settings (see runtimeEnv): argc, argv[0..argc-1]
	// and argv's NULL move down six words (the stack stays 16-byte
	// aligned), and the six words freed between argv's NULL and envp[0]
	// point at runtimeEnv's six entries. The kernel's own envp vector
	// (·envp above) is left as it was.
	MOVD	0(RSP), R2
	ADD	$2, R2, R2
	MOVD	RSP, R3
	SUB	$48, R3, R4
shift:
	MOVD	(R3), R5
	MOVD	R5, (R4)
	ADD	$8, R3, R3
	ADD	$8, R4, R4
	SUBS	$1, R2, R2
	BNE	shift
	MOVD	$·runtimeEnv(SB), R5
	MOVD	$6, R2
envloop:
	MOVD	R5, (R4)
	ADD	$16, R5, R5
	ADD	$8, R4, R4
	SUBS	$1, R2, R2
	BNE	envloop
	MOVD	RSP, R3
	SUB	$48, R3, R3
	MOVD	R3, RSP
	MOVD	$0, R0
	MOVD	$0, R1
	MOVD	$0, R2
	MOVD	$0, R3
	MOVD	$0, R4
	MOVD	$0, R5
	MOVD	$0, R6
	MOVD	$0, R8
	MOVD	$0, R12
	JMP	_rt0_arm64_linux(SB)

// rawExec sets the signal mask to *mask, makes each signal in pend pending
// on this thread (tgkill), and calls execve. On failure it takes those
// signals off again, restores the mask and returns the errno. It is one assembly function so that the
// goroutine cannot move to another thread between the two.
// func rawExec(path, argv, envp unsafe.Pointer, mask *uint64, pend uint64) uintptr
TEXT ·rawExec(SB),NOSPLIT,$0-48
	MOVD	$135, R8
	MOVD	$2, R0
	MOVD	mask+24(FP), R1
	MOVD	$·oldMask(SB), R2
	MOVD	$8, R3
	SVC
	MOVD	pend+32(FP), R13
	CBZ	R13, exec
	MOVD	$172, R8 // getpid
	SVC
	MOVD	R0, R14
	MOVD	$178, R8 // gettid
	SVC
	MOVD	R0, R15
	MOVD	$1, R12
pendloop:
	SUB	$1, R12, R4
	MOVD	$1, R5
	LSL	R4, R5, R5
	AND	R13, R5, R5
	CBZ	R5, pendnext
	MOVD	$131, R8 // tgkill
	MOVD	R14, R0
	MOVD	R15, R1
	MOVD	R12, R2
	SVC
pendnext:
	ADD	$1, R12, R12
	CMP	$65, R12
	BLT	pendloop
exec:
	// The main thread's parent-death signal and reset-on-fork scheduling.
	MOVD	·pdeathSig(SB), R1
	CBZ	R1, nopdeath
	MOVD	$167, R8 // prctl(PR_SET_PDEATHSIG, sig)
	MOVD	$1, R0
	SVC
nopdeath:
	MOVD	·schedReset(SB), R4
	CBZ	R4, noresched
	MOVD	$119, R8 // sched_setscheduler
	MOVD	$0, R0
	MOVD	·schedPolicy(SB), R1
	MOVD	$·schedParam(SB), R2
	SVC
	MOVD	$140, R8 // setpriority
	MOVD	$0, R0
	MOVD	$0, R1
	MOVD	·schedNice(SB), R4
	MOVD	$20, R2
	SUB	R4, R2, R2
	SVC
noresched:
	MOVD	$221, R8 // execve
	MOVD	path+0(FP), R0
	MOVD	argv+8(FP), R1
	MOVD	envp+16(FP), R2
	SVC
	NEG	R0, R0
	MOVD	R0, ret+40(FP)
	// Still here: take back the signals made pending above, or the
	// restored mask would let them be delivered to the runtime.
	MOVD	pend+32(FP), R13
	CBZ	R13, restore
undo:
	// rt_sigtimedwait(&pend, NULL, &zeroTime, 8)
	MOVD	$137, R8
	MOVD	$pend+32(FP), R0
	MOVD	$0, R1
	MOVD	$·zeroTime(SB), R2
	MOVD	$8, R3
	SVC
	CMN	$4, R0
	BEQ	undo
	CMP	$0, R0
	BGT	undo
restore:
	MOVD	$135, R8
	MOVD	$2, R0
	MOVD	$·oldMask(SB), R1
	MOVD	$0, R2
	MOVD	$8, R3
	SVC
	RET
