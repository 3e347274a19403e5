// Package secret keeps secrets out of the lines nss-entrypoint writes at
// start-up. Those lines quote what the user set (HF_HOME, HF_TOKEN_PATH,
// NSS_WORKSPACE, PATH) and what the GPU probe said, and they end up in
// container logs: a token pasted into the wrong variable (HF_HOME=hf_...)
// or a URL with a password in it must not be printed. It is on the start
// path, so it is small and uses no regular expressions; the report's
// redaction (internal/diagnose/redact, gitleaks' rules) goes much further
// and shares Name with it.
package secret

import (
	"cmp"
	"slices"
	"strings"
	"sync"
)

// Redacted replaces each secret.
const Redacted = "[redacted]"

// words mark a variable name whose value is never shown wherever they
// stand in it (PASSW covers PASSWORD and PASSWD).
var words = []string{"TOKEN", "SECRET", "PASSW", "PASSPHRASE", "CREDENTIAL", "PRIVATE", "COOKIE", "APIKEY"}

// parts mark it when they are a whole component of the name (between "_",
// "-" or "."), so that short words do not hide harmless names (PIN in
// PINNED, SIG in SIGNAL, KEY in KEYBOARD).
var parts = []string{"KEY", "KEYS", "PASS", "PWD", "PW", "PIN", "SIG", "SIGNATURE", "SIGNING", "CERT", "CERTS",
	"CRED", "CREDS", "AUTH", "SESSION", "SAS", "SALT", "OTP", "DSN"}

// suffixes mark a component that ends with them (APIKEY, ACCESSKEY, DBPWD,
// OAUTH); prefixes one that starts with them (AUTHORIZATION, SESSIONID,
// CERTIFICATE, PASSCODE).
var (
	suffixes = []string{"KEY", "PWD", "AUTH"}
	prefixes = []string{"AUTH", "SESSION", "CERT", "PASS"}
)

// Name reports whether a variable name looks like it holds a secret. PWD
// and OLDPWD, the shell's working directories, do not (PWD as a part of a
// name is a password's abbreviation: DB_PWD).
func Name(name string) bool {
	if name == "PWD" || name == "OLDPWD" {
		return false
	}
	up := strings.ToUpper(name)
	for _, w := range words {
		if strings.Contains(up, w) {
			return true
		}
	}
	for rest := up; rest != ""; {
		// The components between "_", "-" and ".", without allocating:
		// this runs for every variable on every start.
		end := strings.IndexAny(rest, "_-.")
		part := rest
		if end >= 0 {
			part, rest = rest[:end], rest[end+1:]
		} else {
			rest = ""
		}
		if part != "" && partIsSecret(part) {
			return true
		}
	}
	return false
}

// partIsSecret reports whether one component of a name marks a secret.
func partIsSecret(part string) bool {
	if slices.Contains(parts, part) {
		return true
	}
	for _, w := range suffixes {
		if strings.HasSuffix(part, w) {
			return true
		}
	}
	for _, w := range prefixes {
		if strings.HasPrefix(part, w) {
			return true
		}
	}
	return false
}

// scanBudget bounds the bytes Scrub searches value by value (the number
// of variables times the text's length): past it, names are judged first.
const scanBudget = 16 << 20

// minValue is the shortest value of a secret-named variable that Scrubber
// looks for in text: a shorter one ("1", "true", "none") is more likely a
// switch than a secret, and would blank ordinary words.
const minValue = 6

// Scrubber removes secrets from text: the values of the environment's
// secret-named variables (ValueIsSecret) wherever they appear, the user
// information of URLs (scheme://user:password@host), and Hugging Face
// tokens and NVIDIA API keys by their shape, whatever variable held them.
type Scrubber struct {
	environ []string
	forms   []func(string) string
	// vars are the environment's variables with a value long enough to
	// look for, each with the forms of its value, made on the first
	// Scrub and kept: a start scrubs a few strings.
	vars []scrubVar
	once sync.Once
}

// scrubVar is one variable a Scrubber looks for.
type scrubVar struct {
	name string
	// value is its value; more are the other forms of it that differ
	// (trimmed, and through each of the Scrubber's forms), each once.
	value string
	more  []string
	// judged says whether secret holds ValueIsSecret(name) yet.
	judged, secret bool
}

// NewScrubber returns a Scrubber for the values of environ's secret-named
// variables, as they are, trimmed (as the token readers trim them) and in
// each of forms (the way the text writes a value: escaped, say). It does no
// work until String is called. A Scrubber is for one goroutine at a time
// (it judges names as it goes).
func NewScrubber(environ []string, forms ...func(string) string) *Scrubber {
	return &Scrubber{environ: environ, forms: forms}
}

// make lists the variables to look for, once.
func (s *Scrubber) make() {
	s.once.Do(s.list)
}

// list is make's work.
func (s *Scrubber) list() {
	for _, kv := range s.environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || len(value) < minValue {
			continue
		}
		v := scrubVar{name: name, value: value}
		add := func(f string) {
			if len(f) >= minValue && f != value && !slices.Contains(v.more, f) {
				v.more = append(v.more, f)
			}
		}
		trimmed := strings.TrimSpace(value)
		add(trimmed)
		for _, form := range s.forms {
			add(form(value))
			if trimmed != value {
				add(form(trimmed))
			}
		}
		s.vars = append(s.vars, v)
	}
}

// isSecret is ValueIsSecret(v.name), judged once.
func (v *scrubVar) isSecret() bool {
	if !v.judged {
		v.judged, v.secret = true, ValueIsSecret(v.name)
	}
	return v.secret
}

// ValueIsSecret reports whether the value of the variable name is to be
// kept out of text: its name marks a secret (Name) and does not name a
// place (HF_TOKEN_PATH, SSL_CERT_DIR, DB_PASSWORD_FILE hold where a secret
// is, which hints must be able to show).
func ValueIsSecret(name string) bool {
	up := strings.ToUpper(name)
	for _, place := range []string{"_PATH", "_FILE", "_DIR", "_DIRS", "_HOME"} {
		if strings.HasSuffix(up, place) {
			return false
		}
	}
	return Name(name)
}

// String returns text with its secrets replaced by Redacted. A nil
// Scrubber still removes URL user information and token shapes.
func (s *Scrubber) String(text string) string {
	text, _ = s.Scrub(text)
	return text
}

// Scrub is String that also says how many secrets it replaced (each
// value found counts once, however often it stands in text; in a very
// large environment, one for all of them).
//
// In an ordinary environment each value is looked for in text before its
// variable's name is judged: the text is a few lines and most values are
// not in it, so a start pays a short search a variable instead of Name's.
// Where the environment times the text passes scanBudget bytes, that would
// be slow (tens of thousands of variables), and the names are judged
// first instead, all secret values replaced in one pass.
func (s *Scrubber) Scrub(text string) (string, int) {
	if len(text) < minValue {
		return text, 0
	}
	count := 0
	if s != nil {
		s.make()
		var found map[string]bool
		large := len(s.vars)*len(text) > scanBudget
		for i := range s.vars {
			v := &s.vars[i]
			if large && !v.isSecret() {
				continue
			}
			for j := -1; j < len(v.more); j++ {
				f := v.value
				if j >= 0 {
					f = v.more[j]
				}
				if found[f] || !large && !strings.Contains(text, f) || !v.isSecret() {
					continue
				}
				if found == nil {
					found = map[string]bool{}
				}
				found[f] = true
			}
		}
		if len(found) > 0 {
			// Longest first, so that where two values start at one place
			// the longer goes whole; one pass of a Replacer over text
			// whatever their number (a ReplaceAll each would cost their
			// number times the text).
			values := make([]string, 0, len(found))
			for v := range found {
				values = append(values, v)
			}
			slices.SortFunc(values, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
			pairs := make([]string, 0, 2*len(values))
			for _, v := range values {
				pairs = append(pairs, v, Redacted)
			}
			replaced := strings.NewReplacer(pairs...).Replace(text)
			switch {
			case !large:
				count += len(values)
			case replaced != text:
				count++
			}
			text = replaced
		}
	}
	text, n := URLUserinfo(text)
	count += n
	text, n = tokenShapes(text, "hf_", 20, alnum)
	count += n
	text, n = tokenShapes(text, "nvapi-", 20, func(c byte) bool { return alnum(c) || c == '_' || c == '-' })
	return text, count + n
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// tokenShapes replaces each prefix followed by at least min bytes of tail,
// where the prefix does not follow a letter or digit (but may follow "_":
// NSS_hf_...).
func tokenShapes(text, prefix string, min int, tail func(byte) bool) (string, int) {
	if !strings.Contains(text, prefix) {
		return text, 0
	}
	var b strings.Builder
	last, count := 0, 0
	for i := 0; i+len(prefix) <= len(text); {
		j := strings.Index(text[i:], prefix)
		if j < 0 {
			break
		}
		start := i + j
		if start > 0 && alnum(text[start-1]) {
			i = start + 1
			continue
		}
		end := start + len(prefix)
		for end < len(text) && tail(text[end]) {
			end++
		}
		if end-start-len(prefix) < min {
			// Shorter than a token: what follows it is at most min
			// bytes, so scanning again from the next byte stays linear.
			i = start + 1
			continue
		}
		b.WriteString(text[last:start])
		b.WriteString(Redacted)
		count++
		last = end
		i = end
	}
	if count == 0 {
		return text, 0
	}
	b.WriteString(text[last:])
	return b.String(), count
}

// URLUserinfo returns s with the user information of every URL replaced
// by Redacted, and how many it replaced. After each "://" (or JSON's
// escaped ":\/\/"), the URL's authority runs to white space, a quote or
// the next "://"; everything before its last "@" is user information (a
// password may hold "/", "?", "#", "@" and anything else), unless a "/",
// "?" or "#" comes first after a bare host name, which puts that "@" in
// the path. What follows the host does not matter: "(URL):", a comma, an
// IPv6 zone, a non-ASCII host or path. It reads s once, whatever it holds.
// The report's redaction uses it too.
func URLUserinfo(s string) (string, int) {
	if !strings.Contains(s, "@") {
		return s, 0
	}
	var b strings.Builder
	last, count := 0, 0
	for i := 0; i < len(s); {
		if s[i] != ':' {
			i++
			continue
		}
		n := schemeAt(s, i)
		if n == 0 {
			i++
			continue
		}
		start := i + n
		end := start
		for end < len(s) && !URLDelimiter(s[end]) && (s[end] != ':' || schemeAt(s, end) == 0) {
			end++
		}
		if at := userinfoEnd(s[start:end]); at > 0 && s[start:start+at] != Redacted {
			b.WriteString(s[last:start])
			b.WriteString(Redacted)
			count++
			last = start + at
		}
		i = end
	}
	if count == 0 {
		return s, 0
	}
	b.WriteString(s[last:])
	return b.String(), count
}

// URLDelimiter reports the bytes that end a URL in text.
func URLDelimiter(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f', '"', '\'', '`', '<', '>':
		return true
	}
	return false
}

// schemeAt returns the length of the scheme separator at s[i:], "://" or
// JSON's escaped ":\/\/", or 0.
func schemeAt(s string, i int) int {
	switch {
	case strings.HasPrefix(s[i:], "://"):
		return 3
	case strings.HasPrefix(s[i:], `:\/\/`):
		return 5
	}
	return 0
}

// userinfoEnd returns the index in auth (what follows "://" up to the end
// of the URL) of the "@" that ends the user information, or -1.
func userinfoEnd(auth string) int {
	at := strings.LastIndexByte(auth, '@')
	if at <= 0 {
		return -1
	}
	ui := auth[:at]
	if p := strings.IndexAny(ui, `/\?#`); p >= 0 {
		head := ui[:p]
		if h := strings.LastIndexByte(head, '@'); h >= 0 {
			return h // user@host/path@more: the first "@" ends it
		}
		if !strings.Contains(head, ":") {
			return -1 // host/path@more: "@" in the path
		}
		// user:pass/with/slashes@host: a password holding "/".
	}
	return at
}
