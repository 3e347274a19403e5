package report

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/nvidia-nemo/nss-entrypoint/internal/hints"
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
	fmt.Fprintf(&b, "%s · version %s (%s, %s) · runtime %s\n\n", Summary(d), d.Tool.Version, d.Tool.Commit, orNone(d.Tool.CUDAVariant), d.Facts.Runtime)
	b.WriteString("| | check | result |\n|---|---|---|\n")
	for _, c := range d.Checks {
		msg := c.Message
		if c.Hint != "" && (c.Status == "warn" || c.Status == "fail") {
			msg += " — fix: " + c.Hint
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", mdMark(c.Status), c.ID, mdCell(msg))
	}
	b.WriteString("\n<details>\n<summary>Full report</summary>\n\n````text\n")
	b.Write(Text(d, TextOptions{Verbose: true}))
	b.WriteString("````\n\n</details>\n")
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
	s = hints.OneLine(s)
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "<", "&lt;")
	return s
}
