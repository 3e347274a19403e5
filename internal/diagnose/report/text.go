package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// TextOptions choose how the text report looks.
type TextOptions struct {
	// Colour adds ANSI colour.
	Colour bool
	// Unicode uses ✓ ! ✗ marks instead of ASCII words.
	Unicode bool
	// Verbose adds each check's facts and duration.
	Verbose bool
}

func marks(unicode bool) map[string]string {
	if unicode {
		return map[string]string{"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}
	}
	return map[string]string{"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}
}

// Summary is the closing line: "2 warnings, 1 failure in 11 checks".
func Summary(d Document) string {
	c := d.Counts
	total := c.OK + c.Warn + c.Fail + c.Skip
	var parts []string
	if c.Warn > 0 {
		parts = append(parts, plural(c.Warn, "warning"))
	}
	if c.Fail > 0 {
		parts = append(parts, plural(c.Fail, "failure"))
	}
	s := "no problems"
	if len(parts) > 0 {
		s = strings.Join(parts, ", ")
	}
	s += fmt.Sprintf(" in %d checks", total)
	if c.Skip > 0 {
		s += fmt.Sprintf(" (%d skipped)", c.Skip)
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// Text renders the human report.
func Text(d Document, o TextOptions) []byte {
	p := palette{on: o.Colour}
	m := marks(o.Unicode)
	var b bytes.Buffer
	variant := d.Tool.CUDAVariant
	if variant == "" {
		variant = "no CUDA variant"
	}
	fmt.Fprintf(&b, "%s %s (commit %s, %s)\n", p.bold("nss-entrypoint --diagnose"), printable(d.Tool.Version), printable(d.Tool.Commit), printable(variant))
	fmt.Fprintf(&b, "runtime %s, uid %d, gid %d, %s\n", printable(d.Facts.Runtime), d.Facts.UID, d.Facts.GID, printable(d.GeneratedAt))
	var host []string
	if d.Facts.OS != "" {
		host = append(host, printable(d.Facts.OS))
	}
	if d.Facts.Kernel != "" {
		host = append(host, "kernel "+printable(d.Facts.Kernel))
	}
	if len(host) > 0 {
		b.WriteString(strings.Join(host, ", ") + "\n")
	}
	b.WriteByte('\n')
	width := 0
	for _, c := range d.Checks {
		width = max(width, len(c.ID))
	}
	indent := strings.Repeat(" ", width+len(m["ok"])+4)
	for _, c := range d.Checks {
		mark := m[c.Status]
		switch c.Status {
		case "ok":
			mark = p.green(mark)
		case "warn":
			mark = p.yellow(mark)
		case "fail":
			mark = p.red(mark)
		}
		fmt.Fprintf(&b, " %s %-*s  %s\n", mark, width, printable(c.ID), printable(c.Message))
		if c.Hint != "" && (c.Status == "warn" || c.Status == "fail") {
			fmt.Fprintf(&b, "%s%s %s\n", indent, p.cyan("fix:"), printable(c.Hint))
		}
		if o.Verbose {
			fmt.Fprintf(&b, "%s(%.1f ms)\n", indent, c.DurationMS)
			keys := make([]string, 0, len(c.Data))
			for k := range c.Data {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(&b, "%s%s: %s\n", indent, printable(k), compact(c.Data[k]))
			}
		}
	}
	b.WriteByte('\n')
	b.WriteString(Summary(d) + "\n")
	if o.Verbose && len(d.Facts.Environment) > 0 {
		b.WriteString("\nenvironment:\n")
		keys := make([]string, 0, len(d.Facts.Environment))
		for k := range d.Facts.Environment {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "  %s=%s\n", printable(k), printable(d.Facts.Environment[k]))
		}
	}
	if d.Redaction.Enabled {
		fmt.Fprintf(&b, "redaction on: %s redacted, %s not shown\n", plural(d.Redaction.Redacted, "value"), plural(d.Facts.HiddenVariables, "environment variable"))
	} else {
		b.WriteString(p.red("redaction OFF (--no-redact): this report may contain secrets; do not paste it in public") + "\n")
	}
	return b.Bytes()
}

// compact renders a data value on one line.
func compact(v any) string {
	if s, ok := v.(string); ok {
		return printable(s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return printable(fmt.Sprint(v))
	}
	return printable(string(b))
}
