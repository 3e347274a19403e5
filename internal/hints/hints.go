// Package hints renders the start-up checks' results as the lines
// nss-entrypoint writes on stderr before it starts the target. It is on the
// start path: it links nothing that only the report needs.
package hints

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
)

// Prefix starts every line the entrypoint writes.
const Prefix = "nss-entrypoint: "

// Startup renders the start-up results as whole lines for stderr: for each
// warning or failure, one line with what is wrong and one with the fix, then
// the GPU summary when the GPUs are fine; when nothing is wrong, one summary
// line. Skipped checks print nothing.
func Startup(results []check.Result, colour bool) []byte {
	p := palette{on: colour}
	var b bytes.Buffer
	// Room for a few hints at once: growing from 64 bytes would allocate
	// four times, in size classes a start has not used yet.
	b.Grow(1024)
	problems := 0
	for _, r := range results {
		var label string
		switch r.Status {
		case check.Warn:
			label = p.yellow("warning:")
		case check.Fail:
			label = p.red("error:")
		default:
			continue
		}
		problems++
		line(&b, p.bold(Prefix), label, " ", OneLine(r.Message))
		if r.Hint != "" {
			line(&b, p.bold(Prefix), "  ", p.cyan("fix:"), " ", OneLine(r.Hint))
		}
	}
	gpu := ""
	ran := 0
	for _, r := range results {
		if r.Status == check.OK {
			ran++
			if r.ID == check.GPU.ID {
				gpu = r.Message
			}
		}
	}
	switch {
	case problems == 0 && ran > 0 && gpu != "":
		line(&b, p.bold(Prefix), p.green("ok:"), " ", strconv.Itoa(ran), " checks passed; ", OneLine(gpu))
	case problems == 0 && ran > 0:
		line(&b, p.bold(Prefix), p.green("ok:"), " ", strconv.Itoa(ran), " checks passed")
	case gpu != "":
		// Which GPUs the job will run on is worth a line even when other
		// checks complain.
		line(&b, p.bold(Prefix), p.green("ok:"), " ", OneLine(gpu))
	}
	return b.Bytes()
}

// line writes parts and a newline. The start path avoids fmt: its first use
// costs more than the rest of the rendering.
func line(b *bytes.Buffer, parts ...string) {
	for _, s := range parts {
		b.WriteString(s)
	}
	b.WriteByte('\n')
}

// OneLine keeps a message on one line whatever it quotes, at most MaxLine
// bytes of it, and makes it safe for a terminal: see Escape.
func OneLine(s string) string {
	if len(s) > MaxLine {
		return Escape(s[:MaxLine]) + " ... (" + strconv.Itoa(len(s)-MaxLine) + " bytes more)"
	}
	return Escape(s)
}

// MaxLine bounds the text of one line of hints: a message that quotes the
// probe or a variable (a GPU name of a megabyte) is cut there, so that the
// hints stay a few KiB in memory and on the terminal, and within what one
// exec argument may hold where a helper writes them (128 KiB: at most 14
// lines of 8 KiB once escaped).
const MaxLine = 2048

// Escape makes text that may quote the probe, the environment or file
// names safe to write to a terminal: a line break or tab becomes a space,
// and every other control character (C0, DEL, C1, so ESC and CSI and with
// them every terminal escape sequence), each character that changes how
// text reads without being seen (Hidden), and each byte that is not UTF-8
// is written as a Go escape (\x1b, \u202e, \U000e0041). Text without any
// of these is returned as it is, without copying.
func Escape(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			b.WriteByte(' ')
		case r == utf8.RuneError && isBad(s[i:]):
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			b.WriteString(`\x`)
			b.WriteString(hex2(byte(r)))
		case Hidden(r) && r <= 0xffff:
			b.WriteString(`\u`)
			b.WriteString(hexPad(int64(r), 4))
		case Hidden(r):
			b.WriteString(`\U`)
			b.WriteString(hexPad(int64(r), 8))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Hidden reports the characters that change how text reads without being
// seen: bidirectional controls (which reorder a line), zero-width
// characters and the byte-order mark, the line and paragraph separators,
// and Unicode tag characters ("ASCII smuggling"): every format character
// (category Cf) above ASCII and every tag. The start-up hints and every
// format of the report escape the same set.
func Hidden(r rune) bool {
	return r >= 0x80 && (unicode.Is(unicode.Cf, r) || r == 0x2028 || r == 0x2029 || 0xe0000 <= r && r <= 0xe007f)
}

// hexPad writes v in lower-case hexadecimal, at least width digits.
func hexPad(v int64, width int) string {
	h := strconv.FormatInt(v, 16)
	return strings.Repeat("0", max(0, width-len(h))) + h
}

// isBad reports whether s starts with a byte that is not valid UTF-8.
func isBad(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return r == utf8.RuneError && n <= 1
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}
