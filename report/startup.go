package report

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/nvidia-nemo/nss-entrypoint/diag"
)

// Prefix starts every line the entrypoint writes.
const Prefix = "nss-entrypoint: "

// Startup renders the start-up results as whole lines for stderr: for each
// warning or failure, one line with what is wrong and one with the fix; when
// nothing is wrong, one summary line. Skipped checks print nothing.
func Startup(results []diag.Result, colour bool) []byte {
	p := palette{on: colour}
	var b bytes.Buffer
	problems := 0
	for _, r := range results {
		var label string
		switch r.Status {
		case diag.Warn:
			label = p.yellow("warning:")
		case diag.Fail:
			label = p.red("error:")
		default:
			continue
		}
		problems++
		fmt.Fprintf(&b, "%s%s %s\n", p.bold(Prefix), label, oneLine(r.Message))
		if r.Hint != "" {
			fmt.Fprintf(&b, "%s  %s %s\n", p.bold(Prefix), p.cyan("fix:"), oneLine(r.Hint))
		}
	}
	if problems == 0 {
		ran := 0
		gpu := ""
		for _, r := range results {
			if r.Status == diag.OK {
				ran++
			}
			if r.ID == diag.GPU.ID && r.Status == diag.OK {
				gpu = "; " + r.Message
			}
		}
		if ran > 0 {
			fmt.Fprintf(&b, "%s%s %d checks passed%s\n", p.bold(Prefix), p.green("ok:"), ran, oneLine(gpu))
		}
	}
	return b.Bytes()
}

// oneLine keeps a message on one line whatever it quotes.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
