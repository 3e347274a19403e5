// Package e2e holds the end-to-end suites. They are behind build tags:
//
//	e2e  containers/Dockerfile.cuda built for real with BuildKit through the
//	     Makefile's targets, and real Docker containers of that image
//	     (make e2e); image_test.go decides which image the scenarios run
//	gpu  a real GPU host with an NVIDIA driver (make e2e-gpu)
//
// The GPU suite runs prebuilt binaries from NSS_E2E_BIN (make builds them
// there), so it can run as a compiled test binary on a host without Go.
package e2e
