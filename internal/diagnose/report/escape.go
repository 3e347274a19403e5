package report

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// printable makes s safe to show on one line of a terminal or in Markdown:
// line breaks and tabs become spaces; other control characters (C0, DEL,
// C1, so every escape sequence), bidirectional overrides and bytes that are
// not UTF-8 are written as Go escapes (\x1b, \u202e, \xff).
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || 0x7f <= r && r <= 0x9f || bidi(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' || r == '\r' || r == '\t':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case 0x80 <= r && r <= 0x9f || bidi(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// bidi reports the Unicode controls that reorder text as it is shown.
func bidi(r rune) bool {
	return 0x202a <= r && r <= 0x202e || 0x2066 <= r && r <= 0x2069 || r == 0x200e || r == 0x200f || r == 0x061c
}
