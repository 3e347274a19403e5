// Package hints renders the start-up checks' results as the lines
// nss-entrypoint writes on stderr before it starts the target. It is on the
// start path: it links nothing that only the report needs.
package hints

import (
	"bytes"
	"strconv"
	"strings"

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

// OneLine keeps a message on one line whatever it quotes.
func OneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}
