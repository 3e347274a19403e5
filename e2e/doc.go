// Package e2e holds the end-to-end suites. They are behind build tags:
//
//	e2e  real Docker containers under tini (make e2e)
//	gpu  a real GPU host with an NVIDIA driver (make e2e-gpu)
//
// Both run prebuilt binaries from NSS_E2E_BIN (make builds them there), so
// the GPU suite can run as a compiled test binary on a host without Go.
package e2e
