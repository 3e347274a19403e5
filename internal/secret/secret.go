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
	"unicode/utf8"
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
	// One allocation for the list, not one for each doubling (each a
	// size class, and a page, not yet used at start).
	n := 0
	for _, kv := range s.environ {
		if len(kv) > minValue {
			n++
		}
	}
	s.vars = make([]scrubVar, 0, n)
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
		if !utf8.ValidString(value) {
			// JSON (the probe's report, the report's own round trip)
			// writes each byte that is not UTF-8 as U+FFFD; a run of them
			// becomes one where strings.ToValidUTF8 replaced it.
			add(replaceInvalid(value))
			add(replaceInvalid(trimmed))
			add(strings.ToValidUTF8(value, "\uFFFD"))
			add(strings.ToValidUTF8(trimmed, "\uFFFD"))
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
// Scrubber still removes URL user information and token shapes. It keeps
// no reference to text (the entrypoint hands it a string over a byte
// slice it owns, without a copy).
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
	var spans []span
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
		if large && len(found) > 0 {
			// Tens of thousands of values: one pass of a Replacer over
			// text finds them, longest first where two start at one place
			// (a search a value would cost their number times the text).
			values := make([]string, 0, len(found))
			for v := range found {
				values = append(values, v)
			}
			slices.SortFunc(values, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
			pairs := make([]string, 0, 2*len(values))
			for _, v := range values {
				pairs = append(pairs, v, "\x00")
			}
			// The shapes and URLs are found in the text as it is; then
			// the values replaced (a value's NUL marks never match a shape).
			if shapes := shapeSpans(text); len(shapes) > 0 {
				text = replaceSpans(text, shapes)
				count += len(shapes)
			}
			replaced := strings.NewReplacer(pairs...).Replace(text)
			if replaced != text {
				count++
				replaced = collapseMarks(replaced)
			}
			return replaced, count
		}
		// Every place a value stands is marked, with the URLs' user
		// information and the token shapes, and each run of marked bytes
		// replaced once: values that overlap each other or a token
		// ("abcdefgh" and "efghijkl" in "abcdefghijkl") go whole.
		for v := range found {
			for at := 0; ; {
				i := strings.Index(text[at:], v)
				if i < 0 {
					break
				}
				spans = append(spans, span{at + i, at + i + len(v)})
				at += i + 1
			}
		}
		count += len(found)
	}
	shapes := shapeSpans(text)
	return replaceSpans(text, append(spans, shapes...)), count + len(shapes)
}

// shapeSpans returns where text holds URL user information and the
// shapes of Hugging Face tokens and NVIDIA API keys.
func shapeSpans(text string) []span {
	spans := userinfoSpans(text)
	spans = append(spans, tokenSpans(text, "hf_", 20, alnum)...)
	return append(spans, tokenSpans(text, "nvapi-", 20, func(c byte) bool { return alnum(c) || c == '_' || c == '-' })...)
}

// collapseMarks replaces each run of the NUL bytes the large path's
// Replacer wrote for values with one Redacted. (A NUL of the text's own
// is taken for a mark: the start-up lines escape NUL, and the report's
// strings are scanned before they are escaped.)
func collapseMarks(text string) string {
	var b strings.Builder
	for i := 0; i < len(text); {
		if text[i] != 0 {
			j := strings.IndexByte(text[i:], 0)
			if j < 0 {
				j = len(text) - i
			}
			b.WriteString(text[i : i+j])
			i += j
			continue
		}
		for i < len(text) && text[i] == 0 {
			i++
		}
		b.WriteString(Redacted)
	}
	return b.String()
}

// replaceInvalid writes each byte of s that is not UTF-8 as U+FFFD, as
// encoding/json does.
func replaceInvalid(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// tokenSpans returns where text holds prefix followed by at least min
// bytes of tail, the prefix not after a letter or digit (but it may follow
// "_": NSS_hf_...).
func tokenSpans(text, prefix string, min int, tail func(byte) bool) []span {
	if !strings.Contains(text, prefix) {
		return nil
	}
	var spans []span
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
		spans = append(spans, span{start, end})
		i = end
	}
	return spans
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
	spans := userinfoSpans(s)
	return replaceSpans(s, spans), len(spans)
}

// userinfoSpans returns where the user information of each URL in s
// stands (URLUserinfo).
func userinfoSpans(s string) []span {
	if !strings.Contains(s, "@") {
		return nil
	}
	var spans []span
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
			spans = append(spans, span{start, start + at})
		}
		i = end
	}
	return spans
}

// span is a part of a text, [start, end).
type span struct{ start, end int }

// replaceSpans returns text with each run of bytes that spans cover (they
// may overlap, in any order) replaced by one Redacted.
func replaceSpans(text string, spans []span) string {
	if len(spans) == 0 {
		return text
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	var b strings.Builder
	last := 0
	for i := 0; i < len(spans); {
		start, end := spans[i].start, spans[i].end
		for i++; i < len(spans) && spans[i].start <= end; i++ {
			end = max(end, spans[i].end)
		}
		b.WriteString(text[last:start])
		b.WriteString(Redacted)
		last = end
	}
	b.WriteString(text[last:])
	return b.String()
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
