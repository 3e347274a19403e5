package report

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	gmhtml "github.com/yuin/goldmark/renderer/html"
	"golang.org/x/net/html"
)

// hostileValues are values a check, the facts or the environment can carry
// that mean something to a Markdown renderer, GitHub's in particular. Each
// must come out of the Markdown report as the text it is.
var hostileValues = []struct{ name, value string }{
	{"image", "![x](https://evil.example/track.png)"},
	{"link", "[click](javascript:alert(1)) and [docs](https://evil.example/)"},
	{"reference link", "[docs][1] [1]: https://evil.example/"},
	{"autolink", "<https://evil.example/a> <user@evil.example>"},
	{"bare URL", "see https://evil.example/x and www.evil.example"},
	{"raw img", `<img src="https://evil.example/p.png">`},
	{"details", "<details><summary>ok</summary>"},
	{"comment", "<!-- the rest of the report is hidden"},
	{"closing tags", "</details></td></table>"},
	{"entities", "&lt;b&gt; &amp; &#x40;octocat &copy;"},
	{"mention", "@nvidia-nemo/maintainers please look, @octocat"},
	{"issue references", "#123 GH-123 nvidia-nemo/nss-entrypoint#9"},
	{"emphasis", "*bold* _it_ **b** __u__ ~~gone~~"},
	{"heading", "# heading"},
	{"list and quote", "- item 1. item > quote"},
	{"backslashes", `C:\path\to\ and \* and \\|`},
	{"pipes", "a | b || c"},
	{"delimiter row", "|---|---|"},
	{"backticks inside", "run `ls` or ``` fence"},
	{"starts with backtick", "`start"},
	{"ends with backtick", "end`"},
	{"only backticks", "```"},
	{"pipe in backticks", "`a|b` \\`c`"},
	{"ends with backslash", `ends with \`},
	{"empty", ""},
	{"spaces only", "   "},
	{"space both ends", " padded "},
	{"space at start", " lead"},
	{"space at end", "trail "},
	{"line breaks", "one\n# two\n- three\n```\n</details>"},
	{"math", "$x^2$ and $`y`$"},
	{"emoji", ":rocket: :+1:"},
}

// markdownPositions are the places of the report that show a value: each
// plants one into a document and says where the rendered HTML shows it.
var markdownPositions = []struct {
	name string
	set  func(d *Document, v string)
	// where is the element that shows the value: "h3", "p" (the summary
	// line), "td:row:col" (a table cell, rows from 0 without the header),
	// or "" for a value shown only in the full report.
	where string
	// want is that element's whole text, given what the value shows as.
	want func(d Document, shown string) string
}{
	{"overall", func(d *Document, v string) { d.Overall = v }, "h3",
		func(d Document, s string) string { return "nss-entrypoint --diagnose: " + s }},
	{"version", func(d *Document, v string) { d.Tool.Version = v }, "p", summaryLine},
	{"commit", func(d *Document, v string) { d.Tool.Commit = v }, "p", summaryLine},
	{"CUDA variant", func(d *Document, v string) { d.Tool.CUDAVariant = v }, "p", summaryLine},
	{"runtime", func(d *Document, v string) { d.Facts.Runtime = v }, "p", summaryLine},
	{"check id", func(d *Document, v string) { d.Checks[1].ID = v }, "td:1:1",
		func(d Document, s string) string { return s }},
	{"message", func(d *Document, v string) { d.Checks[0].Message = v }, "td:0:2",
		func(d Document, s string) string { return s }},
	{"message with a hint", func(d *Document, v string) { d.Checks[1].Message = v }, "td:1:2",
		func(d Document, s string) string { return s + " — fix: " + printable(d.Checks[1].Hint) }},
	{"hint", func(d *Document, v string) { d.Checks[2].Hint = v }, "td:2:2",
		func(d Document, s string) string {
			if d.Checks[2].Hint == "" {
				return printable(d.Checks[2].Message) // no hint, no fix
			}
			return printable(d.Checks[2].Message) + " — fix: " + s
		}},
	// Only in the full report: its text is checked whole.
	{"OS", func(d *Document, v string) { d.Facts.OS = v }, "", nil},
	{"kernel", func(d *Document, v string) { d.Facts.Kernel = v }, "", nil},
	{"data value", func(d *Document, v string) { d.Checks[0].Data["name"] = v }, "", nil},
	{"data key", func(d *Document, v string) { d.Checks[0].Data[v] = "x" }, "", nil},
	{"environment value", func(d *Document, v string) { d.Facts.Environment["NSS_LOG_LEVEL"] = v }, "", nil},
	{"environment name", func(d *Document, v string) { d.Facts.Environment[v] = "x" }, "", nil},
}

// summaryLine is the line under the heading, the tool's facts shown as
// the renderer shows them.
func summaryLine(d Document, _ string) string {
	variant := "no CUDA variant"
	if d.Tool.CUDAVariant != "" {
		variant = shownValue(d.Tool.CUDAVariant)
	}
	return fmt.Sprintf("%s · version %s (%s, %s) · runtime %s", Summary(d), shownValue(d.Tool.Version),
		shownValue(d.Tool.Commit), variant, shownValue(d.Facts.Runtime))
}

// shownValue is what a reader should see for the value v: v itself on one
// line, or a word for nothing.
func shownValue(v string) string {
	if p := printable(v); p != "" {
		return p
	}
	return "(empty)"
}

// TestMarkdownShowsValuesLiterally renders the report with each hostile
// value in each place, turns the Markdown into HTML with a CommonMark
// renderer with GitHub's extensions (tables, autolinks, strikethrough,
// raw HTML passed through), and checks that the HTML has only the
// report's own structure and shows the value as its text.
func TestMarkdownShowsValuesLiterally(t *testing.T) {
	for _, pos := range markdownPositions {
		for _, hv := range hostileValues {
			t.Run(pos.name+"/"+hv.name, func(t *testing.T) {
				d := sampleDoc()
				pos.set(&d, hv.value)
				md := Markdown(d)
				doc := renderGFM(t, md)
				checkStructure(t, doc, len(d.Checks))
				if t.Failed() {
					t.Logf("markdown:\n%s", md)
					return
				}
				// The full report is the text report, whole and literal.
				pre := find(doc, "pre")
				if got, want := textOf(pre[0]), string(Text(d, TextOptions{Verbose: true})); got != want {
					t.Errorf("full report shown as\n%q\nwant\n%q", got, want)
				}
				if pos.where == "" {
					return
				}
				el := element(t, doc, pos.where)
				if got, want := textOf(el), pos.want(d, shownValue(hv.value)); got != want {
					t.Errorf("%s shown as %q, want %q\nmarkdown:\n%s", pos.where, got, want, md)
				}
				// The value is the whole text of a code span, so nothing in
				// it is read as markup, a mention or a reference.
				if p := printable(hv.value); p != "" && !hasCode(el, p) {
					t.Errorf("%s has no code span holding exactly %q\nmarkdown:\n%s", pos.where, p, md)
				}
			})
		}
	}
}

// renderGFM renders md as GitHub would, near enough: CommonMark, GFM's
// tables, autolinks and strikethrough, and raw HTML passed through as
// GitHub passes its harmless tags through (it drops <script>, keeps
// <img>, <a>, <details>).
func renderGFM(t *testing.T, md []byte) *html.Node {
	t.Helper()
	var out bytes.Buffer
	r := goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithRendererOptions(gmhtml.WithUnsafe()))
	if err := r.Convert(md, &out); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&out)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// reportElements are the elements the report's own Markdown makes, and
// how many of each there are (-1: any number).
var reportElements = map[string]int{
	"html": 1, "head": 1, "body": 1, "h3": 1, "p": 1, "table": 1, "thead": 1, "tbody": 1,
	"details": 1, "summary": 1, "pre": 1, "tr": -1, "th": -1, "td": -1, "code": -1,
}

// checkStructure fails on any element, comment or link the report does
// not make itself, on a table row with other than three cells, and on any
// character outside a code span that the report's own words do not use.
func checkStructure(t *testing.T, doc *html.Node, checks int) {
	t.Helper()
	count := map[string]int{}
	var walk func(n *html.Node, inCode bool)
	walk = func(n *html.Node, inCode bool) {
		switch n.Type {
		case html.ElementNode:
			count[n.Data]++
			if _, ok := reportElements[n.Data]; !ok {
				t.Errorf("the report renders a <%s> element", n.Data)
			}
			inCode = inCode || n.Data == "code" || n.Data == "pre"
		case html.CommentNode:
			t.Errorf("the report renders an HTML comment %q", n.Data)
		case html.TextNode:
			if !inCode {
				if i := strings.IndexFunc(n.Data, notOwnText); i >= 0 {
					t.Errorf("%q outside a code span in %q", n.Data[i:], n.Data)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inCode)
		}
	}
	walk(doc, false)
	for name, want := range reportElements {
		if want >= 0 && count[name] != want {
			t.Errorf("%d <%s> elements, want %d", count[name], name, want)
		}
	}
	rows := find(doc, "tr")
	if len(rows) != checks+1 {
		t.Errorf("%d table rows, want %d", len(rows), checks+1)
	}
	for i, tr := range rows {
		if n := len(find(tr, "td")) + len(find(tr, "th")); n != 3 {
			t.Errorf("table row %d has %d cells, want 3", i, n)
		}
	}
}

// notOwnText is true for a character the report's own words, marks and
// layout never use outside a code span.
func notOwnText(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return false
	case strings.ContainsRune(" \n-:(),·—✅⚠\ufe0f❌➖", r):
		return false
	}
	return true
}

// element finds "h3", the summary line "p" or a body cell "td:row:col".
func element(t *testing.T, doc *html.Node, where string) *html.Node {
	t.Helper()
	switch where {
	case "h3":
		return find(doc, "h3")[0]
	case "p":
		return find(doc, "p")[0]
	}
	var row, col int
	if _, err := fmt.Sscanf(where, "td:%d:%d", &row, &col); err != nil {
		t.Fatalf("bad place %q", where)
	}
	return find(find(find(doc, "tbody")[0], "tr")[row], "td")[col]
}

// find lists the elements called name under n, in document order.
func find(n *html.Node, name string) []*html.Node {
	var out []*html.Node
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && c.Data == name {
			out = append(out, c)
		}
		out = append(out, find(c, name)...)
	}
	return out
}

// textOf is the text n shows: its text nodes, joined.
func textOf(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(textOf(c))
	}
	return b.String()
}

// hasCode reports whether a code element under n holds exactly s.
func hasCode(n *html.Node, s string) bool {
	for _, c := range find(n, "code") {
		if textOf(c) == s {
			return true
		}
	}
	return false
}

// TestMarkdownCodeSpanSource pins the Markdown written for a value at the
// end of the summary line: the delimiter one backtick longer than the
// value's longest run, one space inside each delimiter only where the
// value has a backtick or a space at an edge, a value of spaces whole, and
// a word, not a code span, for nothing.
func TestMarkdownCodeSpanSource(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"docker", "`docker`"},
		{"a`b", "``a`b``"},
		{"a``b`c", "```a``b`c```"},
		{"`start", "`` `start ``"},
		{"end`", "`` end` ``"},
		{"```", "```` ``` ````"},
		{" padded ", "`  padded  `"},
		{" lead", "`  lead `"},
		{"trail ", "` trail  `"},
		{"   ", "`   `"},
		{"", "(empty)"},
		{"a|b", "`a|b`"},
		{`back\slash`, "`back\\slash`"},
		{"two\nlines", "`two lines`"},
	} {
		d := sampleDoc()
		d.Facts.Runtime = tc.value
		line := strings.Split(string(Markdown(d)), "\n")[2]
		if _, got, _ := strings.Cut(line, " · runtime "); got != tc.want {
			t.Errorf("runtime %q written as %q, want %q", tc.value, got, tc.want)
		}
	}
	// In a table cell each pipe is escaped, inside the code span too.
	d := sampleDoc()
	d.Checks[0].Message = `a|b\|c`
	if md := string(Markdown(d)); !strings.Contains(md, "| `a\\|b\\\\|c` |\n") {
		t.Errorf("pipes in a cell not escaped:\n%s", md)
	}
}
