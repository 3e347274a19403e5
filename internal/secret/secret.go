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
	"slices"
	"strings"
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

// Name reports whether a variable name looks like it holds a secret.
func Name(name string) bool {
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

// minValue is the shortest value of a secret-named variable that Scrubber
// looks for in text: a shorter one ("1", "true", "none") is more likely a
// switch than a secret, and would blank ordinary words.
const minValue = 6

// Scrubber removes secrets from text: the values of the environment's
// secret-named variables (Name) wherever they appear, the user
// information of URLs (scheme://user:password@host), and Hugging Face
// tokens and NVIDIA API keys by their shape, whatever variable held them.
type Scrubber struct {
	environ []string
	forms   []func(string) string
}

// NewScrubber returns a Scrubber for the values of environ's secret-named
// variables, as they are, trimmed (as the token readers trim them) and in
// each of forms (the way the text writes a value: escaped, say). It does no
// work until String is called.
func NewScrubber(environ []string, forms ...func(string) string) *Scrubber {
	return &Scrubber{environ: environ, forms: forms}
}

// String returns text with its secrets replaced by Redacted. A nil
// Scrubber still removes URL user information and token shapes.
//
// Each value is looked for in text before its variable's name is judged:
// the text is a few lines and most values are not in it, so a start pays
// a short search a variable instead of Name's.
func (s *Scrubber) String(text string) string {
	if s != nil {
		var found []string
		for _, kv := range s.environ {
			name, value, ok := strings.Cut(kv, "=")
			if !ok || len(value) < minValue {
				continue
			}
			trimmed := strings.TrimSpace(value)
			for i := -2; i < 2*len(s.forms); i++ {
				// value, trimmed, then each form of value and of trimmed.
				var v string
				switch {
				case i == -2:
					v = value
				case i == -1:
					v = trimmed
				case i%2 == 0:
					v = s.forms[i/2](value)
				default:
					v = s.forms[i/2](trimmed)
				}
				if len(v) >= minValue && strings.Contains(text, v) && Name(name) && !slices.Contains(found, v) {
					found = append(found, v)
				}
			}
		}
		// Longest first, so that a value that holds another goes whole.
		slices.SortFunc(found, func(a, b string) int { return len(b) - len(a) })
		for _, v := range found {
			text = strings.ReplaceAll(text, v, Redacted)
		}
	}
	text = userinfo(text)
	text = tokenShapes(text, "hf_", 20, alnum)
	text = tokenShapes(text, "nvapi-", 20, func(c byte) bool { return alnum(c) || c == '_' || c == '-' })
	return text
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// tokenShapes replaces each prefix followed by at least min bytes of tail,
// where the prefix does not follow a letter or digit (but may follow "_":
// NSS_hf_...).
func tokenShapes(text, prefix string, min int, tail func(byte) bool) string {
	if !strings.Contains(text, prefix) {
		return text
	}
	var b strings.Builder
	last := 0
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
		last = end
		i = end
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// userinfo replaces the user information of every URL in text
// ("https://user:pw@host" becomes "https://[redacted]@host"): what lies
// between "://" and the last "@" before the host's end ("/", "?", "#", a
// space or a quote).
func userinfo(text string) string {
	if !strings.Contains(text, "://") || !strings.Contains(text, "@") {
		return text
	}
	var b strings.Builder
	last := 0
	for i := 0; ; {
		j := strings.Index(text[i:], "://")
		if j < 0 {
			break
		}
		auth := i + j + 3
		end := auth
		at := -1
		for end < len(text) && !authorityEnd(text[end]) {
			if text[end] == '@' {
				at = end
			}
			end++
		}
		if at > auth {
			b.WriteString(text[last:auth])
			b.WriteString(Redacted)
			last = at
		}
		i = end
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// authorityEnd reports the bytes that end a URL's authority in text.
func authorityEnd(c byte) bool {
	switch c {
	case '/', '?', '#', ' ', '\t', '\n', '\r', '"', '\'', '<', '>', '`':
		return true
	}
	return false
}
