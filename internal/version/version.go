// Package version holds the build facts stamped in with -ldflags -X.
package version

// These are set at build time, for example
// -X github.com/nvidia-nemo/nss-entrypoint/internal/version.Version=1.2.3.
var (
	// Version is the release version, or "dev".
	Version = "dev"
	// Commit is the short git commit the binary was built from.
	Commit = "unknown"
	// CUDAVariant is the image's CUDA variant, such as "cu129"; empty when
	// the binary was not built for an image.
	CUDAVariant = ""
)
