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

// kernelVector returns the kernel's own environment vector (the one the
// entry stub found) when envv holds exactly its strings, where the kernel
// put them, as Environ returns them; else nil, and Exec copies envv.
func kernelVector(envv []string) unsafe.Pointer {
	if envp == nil {
		return nil
	}
	// Each element is checked before the next is read, so the vector is
	// never read past its NULL; after len(envv) matches, index len(envv)
	// exists (at the latest it is that NULL).
	vec := unsafe.Slice((**byte)(envp), len(envv)+1)
	for i, s := range envv {
		p := vec[i]
		if p == nil || unsafe.StringData(s) != p || *(*byte)(unsafe.Add(unsafe.Pointer(p), len(s))) != 0 {
			return nil
		}
	}
	if vec[len(envv)] != nil {
		return nil
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
