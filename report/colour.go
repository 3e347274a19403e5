// Package report renders check results: the start-up hints on stderr and the
// --diagnose report in text, JSON and Markdown. It never runs a check.
package report

import (
	"github.com/fatih/color"
	"golang.org/x/sys/unix"
)

// IsTerminal reports whether the descriptor is a terminal.
func IsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// ColourWanted decides once whether a stream gets colour: NO_COLOR (any
// non-empty value) and CLICOLOR=0 turn it off, CLICOLOR_FORCE (non-empty,
// not "0") turns it on, TERM=dumb turns it off, and otherwise a terminal gets
// colour. getenv returns "" for unset variables.
func ColourWanted(getenv func(string) string, isTerminal bool) bool {
	switch {
	case getenv("NO_COLOR") != "":
		return false
	case getenv("CLICOLOR_FORCE") != "" && getenv("CLICOLOR_FORCE") != "0":
		return true
	case getenv("CLICOLOR") == "0", getenv("TERM") == "dumb":
		return false
	}
	return isTerminal
}

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
