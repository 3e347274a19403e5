package procstate

import (
	"strings"
	"testing"
	"unsafe"
)

// kernelVector hands Exec the kernel's own environment vector only for
// exactly the kernel's strings, where the kernel put them (the slice
// Environ returned, or a copy of it); anything else (a changed or cut
// element, another length) is copied by Exec as before.
func TestKernelVectorOnlyForTheUnchangedEnvironment(t *testing.T) {
	saved := envp
	defer func() { envp = saved }()

	// A vector laid out as the kernel's: NUL-terminated strings and a
	// NULL-terminated array of pointers to them.
	raw := []string{"A=1", "A=2", "NO_EQUALS", ""}
	var ptrs []*byte
	for _, s := range raw {
		b := append([]byte(s), 0)
		ptrs = append(ptrs, &b[0])
	}
	ptrs = append(ptrs, nil)
	envp = unsafe.Pointer(&ptrs[0])
	captured = 1
	defer func() { captured = 0 }()
	env, ok := Environ()
	if !ok || strings.Join(env, "|") != strings.Join(raw, "|") {
		t.Fatalf("Environ() = %q, %v", env, ok)
	}

	changed := append([]string(nil), env...)
	changed[1] = "A=3"
	cut := append([]string(nil), env...)
	cut[0] = cut[0][:2] // the kernel's bytes, but shorter
	inPlace := env[:len(env):len(env)]
	cases := []struct {
		name string
		envv []string
		want bool
	}{
		{"the slice Environ returned", env, true},
		{"the same slice, resliced to its length", inPlace, true},
		{"a copy of it: the same strings", append([]string(nil), env...), true},
		{"an element changed", changed, false},
		{"an element cut short in place of the kernel's bytes", cut, false},
		{"one more element", append(append([]string(nil), env...), "B=1"), false},
		{"shorter", env[:2], false},
		{"nil", nil, false},
	}
	for _, tc := range cases {
		if got := kernelVector(tc.envv) != nil; got != tc.want {
			t.Errorf("%s: kernel vector used %v, want %v", tc.name, got, tc.want)
		}
	}
	// The same backing array with an element replaced in place.
	env[0] = "A=9"
	if kernelVector(env) != nil {
		t.Error("an element replaced in place: the kernel's vector was used")
	}
}
