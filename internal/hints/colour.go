package hints

import (
	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"golang.org/x/sys/unix"
)

// IsTerminal reports whether the descriptor is a terminal.
func IsTerminal(fd int) bool {
	st, err := check.StatFD(fd)
	return IsTerminalStat(fd, st, err)
}

// IsTerminalStat is IsTerminal for what check.StatFD said of fd, for a
// caller that asked it already.
func IsTerminalStat(fd int, st check.FDStat, err error) bool {
	// The ioctl goes to the filesystem for a FUSE file, whose daemon may
	// never answer: ask it only of what can be a terminal, a character
	// device (or, where statx is refused, what cannot be seeked).
	if err == nil && st.Type != unix.S_IFCHR || err != nil && check.Seekable(fd) {
		return false
	}
	_, err = unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// ColourWanted decides once whether a stream gets colour: NO_COLOR (any
// non-empty value) and CLICOLOR=0 turn it off, CLICOLOR_FORCE (non-empty,
// not "0") turns it on, TERM=dumb turns it off, and otherwise a terminal gets
// colour. getenv returns "" for unset variables. nss-diagnose decides the
// same way for its own streams.
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

// palette colours text with the few SGR sequences the hint lines use, or
// returns it unchanged when colour is off. The start path writes them itself
// rather than linking fatih/color, whose package initialisation (it looks at
// the terminal and the environment before main) would run on every
// container start; the bytes are the ones fatih/color writes for the same
// attributes, so the lines look the same in both binaries.
type palette struct {
	on bool
}

func (p palette) paint(s, open, close string) string {
	if !p.on || s == "" {
		return s
	}
	return open + s + close
}

func (p palette) bold(s string) string   { return p.paint(s, "\x1b[1m", "\x1b[22m") }
func (p palette) red(s string) string    { return p.paint(s, "\x1b[31;1m", "\x1b[0;22m") }
func (p palette) yellow(s string) string { return p.paint(s, "\x1b[33;1m", "\x1b[0;22m") }
func (p palette) green(s string) string  { return p.paint(s, "\x1b[32m", "\x1b[0m") }
func (p palette) cyan(s string) string   { return p.paint(s, "\x1b[36m", "\x1b[0m") }
