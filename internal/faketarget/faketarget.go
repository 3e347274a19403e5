// Package faketarget reads the report that the fake safe-synthesizer
// (testdata/faketarget) writes, for the tests that start it.
package faketarget

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Report is what the fake target says about how it was started.
type Report struct {
	ArgsHex []string `json:"args_hex"`
	EnvHex  []string `json:"env_hex"`
	PID     int      `json:"pid"`
	PPID    int      `json:"ppid"`
	PGID    int      `json:"pgid"`
	UID     int      `json:"uid"`
	Umask   int      `json:"umask"`
	Cwd     string   `json:"cwd"`
	SigBlk  string   `json:"sig_blk"`
	SigIgn  string   `json:"sig_ign"`
	SigCgt  string   `json:"sig_cgt"`
	// SigPnd and ShdPnd are the signals pending for the thread and for the
	// process.
	SigPnd string            `json:"sig_pnd"`
	ShdPnd string            `json:"shd_pnd"`
	FDs    map[string]string `json:"fds"`
	Rlimit [2]uint64         `json:"rlimit_nofile"`
	// PDeathSig, SchedPolicy (with SCHED_RESET_ON_FORK, 0x40000000),
	// SchedPriority and Nice are the exec'ing thread's own.
	PDeathSig     int `json:"pdeathsig"`
	SchedPolicy   int `json:"sched_policy"`
	SchedPriority int `json:"sched_priority"`
	Nice          int `json:"nice"`
}

// Parse decodes a report.
func Parse(b []byte) (Report, error) {
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("fake target report: %w", err)
	}
	return r, nil
}

// Args returns argv, byte for byte.
func (r Report) Args() []string { return unhex(r.ArgsHex) }

// Env returns the environment, byte for byte.
func (r Report) Env() []string { return unhex(r.EnvHex) }

func unhex(in []string) []string {
	out := make([]string, len(in))
	for i, h := range in {
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil
		}
		out[i] = string(b)
	}
	return out
}

// FDNumbers returns the open descriptor numbers, sorted.
func (r Report) FDNumbers() []string {
	keys := make([]string, 0, len(r.FDs))
	for k := range r.FDs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// FDKinds renders the descriptors with pipe inode numbers left out: they
// differ between two starts that are otherwise the same.
func (r Report) FDKinds() string {
	var parts []string
	for _, k := range r.FDNumbers() {
		v := r.FDs[k]
		if strings.HasPrefix(v, "pipe:") {
			v = "pipe"
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}

// Abbrev shortens long strings for test messages ("xxx...(102400 bytes)").
func Abbrev(s []string) []string {
	out := slices.Clone(s)
	for i := range out {
		if len(out[i]) > 40 {
			out[i] = fmt.Sprintf("%s...(%d bytes)", out[i][:40], len(out[i]))
		}
	}
	return out
}
