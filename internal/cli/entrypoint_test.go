package cli

import "testing"

// An exec with an empty argv (possible on Linux before 5.18, which this
// machine's kernel no longer allows) still reaches the handover: here a
// target that does not exist, so Main returns bash's 127 instead of
// exec'ing the test away.
func TestEmptyArgvStillHandsOver(t *testing.T) {
	env := []string{"NSS_ENTRYPOINT_CHECKS=off", "NSS_ENTRYPOINT_TARGET=/nonexistent/safe-synthesizer"}
	if code := Main(nil, env); code != 127 {
		t.Errorf("Main(nil) = %d, want 127", code)
	}
}
