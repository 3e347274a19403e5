// Package archtest holds the tests that guard the project's architectural
// promises: nss-entrypoint links exactly the start path (never NVML, the
// report, colour libraries or the network), checks never import the
// renderers, every library package is internal, and the three binaries are
// built the way docs/design.md says.
package archtest
