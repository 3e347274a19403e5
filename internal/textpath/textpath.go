// Package textpath joins paths as text, the way the kernel (and bash, and
// Python's os.path.join) will read them: nothing is cleaned, so "link/.."
// stays for the kernel to resolve through the link, where path.Join would
// drop both and name another file. It is on the start path.
package textpath

import "strings"

// Join joins dir and name with one slash between them: dir + "/" + name,
// or dir + name when dir is empty or already ends with a slash.
func Join(dir, name string) string {
	if dir == "" || strings.HasSuffix(dir, "/") {
		return dir + name
	}
	return dir + "/" + name
}
