package check

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkWorkspace times the workspace check on a temporary root: the
// usual layout (data/ holding a file), and the layouts it warns about.
func BenchmarkWorkspace(b *testing.B) {
	layouts := []struct {
		name  string
		files []string // a name ending in "/" is a folder
	}{
		{"data holding a file", []string{"workspace/data/train.csv"}},
		{"empty", []string{"workspace/"}},
		{"only an empty data", []string{"workspace/data/"}},
		{"empty data and hf_cache", []string{"workspace/data/", "workspace/.hf_cache/"}},
	}
	for _, l := range layouts {
		b.Run(l.name, func(b *testing.B) {
			root := b.TempDir()
			for _, f := range l.files {
				p := filepath.Join(root, f)
				if f[len(f)-1] == '/' {
					if err := os.MkdirAll(p, 0o755); err != nil {
						b.Fatal(err)
					}
					continue
				}
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("a\n"), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			e := &Env{Root: root, UID: 1000, GID: 1000}
			ctx := b.Context()
			Workspace.Run(ctx, e) // the mount table and runtime, read once per start
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				Workspace.Run(ctx, e)
			}
		})
	}
}
