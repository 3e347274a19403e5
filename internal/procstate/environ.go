package procstate

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxEnviron bounds the read of /proc/self/environ. The kernel caps argv
// and the environment together at a quarter of the stack limit (6 MiB at
// most with an unlimited stack); past this, os.Environ is used.
const maxEnviron = 8 << 20

// Environ returns the environment the process was started with, byte for
// byte and in order: duplicates and entries without "=" included, which
// os.Environ drops. It reads the kernel's environment vector that the entry
// stub found on the initial stack; without the stub, /proc/self/environ;
// when neither can be read it returns os.Environ() and false.
func Environ() ([]string, bool) {
	if captured == 1 && envp != nil {
		vec := unsafe.Slice((**byte)(envp), 1<<20)
		count := 0
		for count < len(vec) && vec[count] != nil {
			count++
		}
		// The strings are not copied: they stay where the kernel put them,
		// above the initial stack, for the life of the process (the Go
		// runtime keeps os.Args and its own environment there too).
		env := make([]string, count)
		for i, p := range vec[:count] {
			n := 0
			for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
				n++
			}
			env[i] = unsafe.String(p, n)
		}
		kernelEnviron = env
		return env, true
	}
	b, err := readAll("/proc/self/environ", maxEnviron)
	if err != nil || len(b) >= maxEnviron || len(b) == 0 && len(os.Environ()) > 0 {
		return os.Environ(), false
	}
	s := string(b)
	var env []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != 0 {
			i++
		}
		env = append(env, s[:i])
		if i == len(s) {
			break
		}
		s = s[i+1:]
	}
	return env, true
}

// kernelEnviron is the slice Environ returned from the kernel's vector:
// Exec given it passes that vector on as it is.
var kernelEnviron []string

// kernelVector returns the kernel's own environment vector when envv is the
// slice Environ returned from it, element for element unchanged, else nil.
func kernelVector(envv []string) unsafe.Pointer {
	if envp == nil || len(envv) != len(kernelEnviron) || unsafe.SliceData(envv) != unsafe.SliceData(kernelEnviron) {
		return nil
	}
	vec := unsafe.Slice((**byte)(envp), len(envv))
	for i, p := range vec {
		if unsafe.StringData(envv[i]) != p {
			return nil
		}
	}
	return envp
}

// readAll reads up to limit bytes of a file with raw system calls (no
// network poller on the start path).
func readAll(name string, limit int) ([]byte, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(cap(buf), limit-len(buf)))...)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
		buf = buf[:len(buf)+n]
	}
	return buf, nil
}
