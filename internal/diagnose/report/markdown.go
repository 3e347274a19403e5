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
//
// Every value in it comes from the machine (the environment, file names,
// the GPU probe) and is shown literally, whatever it holds: on the summary
// lines in a code span (mdCode, mdCellCode), in the full report inside a
// fenced code block. Neither renders links, images, HTML, emphasis,
// headings or lists, and GitHub neither mentions anyone nor links an issue
// from inside them. The rest of the document is this function's own text.
// No value starts a line, so none can open a block of its own.
func Markdown(d Document) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "### nss-entrypoint --diagnose: %s\n\n", mdCode(d.Overall))
	variant := "no CUDA variant"
	if d.Tool.CUDAVariant != "" {
		variant = mdCode(d.Tool.CUDAVariant)
	}
	fmt.Fprintf(&b, "%s · version %s (%s, %s) · runtime %s\n\n", Summary(d), mdCode(d.Tool.Version), mdCode(d.Tool.Commit), variant, mdCode(d.Facts.Runtime))
	b.WriteString("| | check | result |\n|---|---|---|\n")
	for _, c := range d.Checks {
		msg := mdCellCode(c.Message)
		if c.Hint != "" && (c.Status == "warn" || c.Status == "fail") {
			msg += " — fix: " + mdCellCode(c.Hint)
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", mdMark(c.Status), mdCellCode(c.ID), msg)
	}
	text := Text(d, TextOptions{Verbose: true})
	// A fence longer than any run of backticks in the text: nothing in it
	// can close the block early.
	fence := strings.Repeat("`", max(4, longestRun(string(text), '`')+1))
	b.WriteString("\n<details>\n<summary>Full report</summary>\n\n" + fence + "text\n")
	b.Write(text)
	b.WriteString(fence + "\n\n</details>\n")
	return b.Bytes()
}

// mdEmpty stands for an empty value: a code span cannot be empty, and this
// is plain text, so it cannot be taken for a value that says "(empty)".
const mdEmpty = "(empty)"

// mdCode shows s literally in running text or a heading: a code span,
// after printable has put it on one line. Inside a code span CommonMark
// reads no markup at all; the span's delimiter is one backtick longer than
// the longest run of backticks in s, so no run in s can close it. A value
// that starts or ends with a backtick or a space gets one space inside each
// delimiter (CommonMark takes exactly one off each side when both are
// there), so a backtick at its edge does not join the delimiter and its own
// spaces stay. A value of spaces only is kept whole by CommonMark as it is.
func mdCode(s string) string {
	return codeSpan(printable(s), false)
}

// mdCellCode is mdCode for a GFM table cell. GFM splits a row into cells
// at every pipe not preceded by a backslash before it parses the cell's
// inlines, code spans included, and then removes the backslash in front of
// each pipe: so each pipe is written as \| and the code span shows it as
// |. A backslash of the value's own before a pipe is left as it is: the
// row splitter takes it as part of the cell, and only the one backslash
// next to the pipe is removed.
func mdCellCode(s string) string {
	return codeSpan(printable(s), true)
}

func codeSpan(s string, cell bool) string {
	if s == "" {
		return mdEmpty
	}
	delim := strings.Repeat("`", longestRun(s, '`')+1)
	pad := ""
	if strings.Trim(s, " ") != "" && (edge(s[0]) || edge(s[len(s)-1])) {
		pad = " "
	}
	if cell {
		s = strings.ReplaceAll(s, "|", `\|`)
	}
	return delim + pad + s + pad + delim
}

// edge reports whether c at the edge of a code span's content would be
// lost or misread: a backtick would lengthen the delimiter, a space might
// be stripped.
func edge(c byte) bool { return c == '`' || c == ' ' }

// longestRun is the length of the longest run of c in s.
func longestRun(s string, c byte) int {
	best, n := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			n++
			best = max(best, n)
		} else {
			n = 0
		}
	}
	return best
}
