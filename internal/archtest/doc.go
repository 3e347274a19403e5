// Package archtest holds the tests that guard the project's architectural
// promises: the static entrypoint never links NVML, checks never import the
// renderers, and the two binaries are built the way DESIGN.md says.
package archtest
