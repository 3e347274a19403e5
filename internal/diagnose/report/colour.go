// Package report renders the --diagnose report in text, JSON and Markdown.
// It never runs a check, and nss-entrypoint never links it.
package report

import "github.com/fatih/color"

// palette colours text, or returns it unchanged when colour is off.
type palette struct {
	on bool
}

func (p palette) paint(s string, attrs ...color.Attribute) string {
	if !p.on || s == "" {
		return s
	}
	c := color.New(attrs...)
	c.EnableColor()
	return c.Sprint(s)
}

func (p palette) bold(s string) string   { return p.paint(s, color.Bold) }
func (p palette) red(s string) string    { return p.paint(s, color.FgRed, color.Bold) }
func (p palette) yellow(s string) string { return p.paint(s, color.FgYellow, color.Bold) }
func (p palette) green(s string) string  { return p.paint(s, color.FgGreen) }
func (p palette) cyan(s string) string   { return p.paint(s, color.FgCyan) }
