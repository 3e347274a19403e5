package report

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/nvidia-nemo/nss-entrypoint/internal/hints"
)

// printable makes s safe to show on one line of a terminal or in Markdown:
// line breaks and tabs become spaces; other control characters (C0, DEL,
// C1, so every escape sequence), invisible characters (hidden) and bytes
// that are not UTF-8 are written as Go escapes (\x1b, \u202e, \xff).
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || 0x7f <= r && r <= 0x9f || hidden(r) {
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
		case 0x80 <= r && r <= 0x9f || hidden(r) && r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		case hidden(r):
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// hidden is the set of invisible characters that every format escapes,
// the start-up hints' own (hints.Hidden), so the two cannot drift apart.
func hidden(r rune) bool { return hints.Hidden(r) }

// escapeJSON writes, in encoding/json's output, every hidden character, DEL and
// C1 control as
// a \uXXXX escape (a surrogate pair above U+FFFF): the encoder leaves them
// raw, and "cat report.json" would show a line reordered or smuggled text.
// They occur only inside strings, so the document's meaning is unchanged.
func escapeJSON(b []byte) []byte {
	clean := true
	for _, r := range string(b) {
		if hidden(r) || 0x7f <= r && r <= 0x9f {
			clean = false
			break
		}
	}
	if clean {
		return b
	}
	out := make([]byte, 0, len(b)+64)
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		switch {
		case !hidden(r) && !(0x7f <= r && r <= 0x9f):
			out = append(out, b[i:i+n]...)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += n
	}
	return out
}
