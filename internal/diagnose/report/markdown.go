package report

import (
	"bytes"
	"fmt"
	"strings"
)

func mdMark(status string) string {
	switch status {
	case "ok":
		return "✅"
	case "warn":
		return "⚠️"
	case "fail":
		return "❌"
	}
	return "➖"
}

// Markdown renders a report to paste into a GitHub issue: a summary table,
// then the full text report in a collapsed block.
func Markdown(d Document) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "### nss-entrypoint --diagnose: %s\n\n", d.Overall)
	fmt.Fprintf(&b, "%s · version %s (%s, %s) · runtime %s\n\n", Summary(d), mdCell(d.Tool.Version), mdCell(d.Tool.Commit), mdCell(orNone(d.Tool.CUDAVariant)), mdCell(d.Facts.Runtime))
	b.WriteString("| | check | result |\n|---|---|---|\n")
	for _, c := range d.Checks {
		msg := c.Message
		if c.Hint != "" && (c.Status == "warn" || c.Status == "fail") {
			msg += " — fix: " + c.Hint
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", mdMark(c.Status), mdCell(c.ID), mdCell(msg))
	}
	text := Text(d, TextOptions{Verbose: true})
	// A fence longer than any run of backticks in the text: nothing in it
	// can close the block early.
	fence := strings.Repeat("`", max(4, longestRun(text, '`')+1))
	b.WriteString("\n<details>\n<summary>Full report</summary>\n\n" + fence + "text\n")
	b.Write(text)
	b.WriteString(fence + "\n\n</details>\n")
	return b.Bytes()
}

func orNone(s string) string {
	if s == "" {
		return "no CUDA variant"
	}
	return s
}

// mdCell escapes text for a table cell.
func mdCell(s string) string {
	s = printable(s)
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "<", "&lt;")
	return s
}

// longestRun is the length of the longest run of c in b.
func longestRun(b []byte, c byte) int {
	best, n := 0, 0
	for _, x := range b {
		if x == c {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}
