// Package redact keeps secrets, personal paths and machine identifiers out
// of the --diagnose report. Environment variables are shown only from an
// allowlist; any string is scanned for secrets whatever its origin, with
// gitleaks' default rules (embedded as data, see gitleaks/README.md), a few
// rules of our own, and an allowlist of harmless URL parameters.
package redact

import (
	"cmp"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Redactor scrubs strings and counts what it scrubbed.
type Redactor struct {
	// Home is $HOME; it prints as "~".
	Home string
	// Hostname is left out wherever it appears.
	Hostname string
	// Count is how many values were redacted so far.
	Count int
}

// redacted replaces every secret.
const redacted = "[redacted]"

// ourRules cover what gitleaks' default rules do not: each is a regular
// expression whose first group (or, without one, whole match) is the secret.
var ourRules = sync.OnceValue(func() []*regexp.Regexp {
	return []*regexp.Regexp{
		// Hugging Face tokens of any length (gitleaks wants exactly 34
		// letters) and NVIDIA API keys (no gitleaks rule).
		// (Not after a letter or digit, but after "_" too: NSS_hf_....)
		regexp.MustCompile(`(?:^|[^A-Za-z0-9])(hf_[A-Za-z0-9]{20,})`),
		regexp.MustCompile(`(?:^|[^A-Za-z0-9])(nvapi-[A-Za-z0-9_-]{20,})`),
		// AWS access key ids in any alphabet (gitleaks wants base32).
		regexp.MustCompile(`(?:^|[^A-Za-z0-9])((?:AKIA|ASIA)[A-Z0-9]{16})(?:[^A-Za-z0-9]|$)`),
		// An Authorization header or a bearer token outside a curl command.
		regexp.MustCompile(`(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{8,})`),
		regexp.MustCompile(`(?i)\bauthorization\s*[:=]\s*(?:(?:basic|bearer|token|digest)\s+)?([A-Za-z0-9._~+/=-]{8,})`),
		// Azure storage and service-bus connection strings.
		regexp.MustCompile(`(?i)\b(?:AccountKey|SharedAccessKey|SharedAccessSignature)=([^;\s"'&]+)`),
		// A service account's key id, which gitleaks takes for a commit hash.
		regexp.MustCompile(`"private_key_id"\s*:\s*"([0-9a-fA-F]{16,})"`),
		// A PEM private key, also cut short or with its newlines escaped (a
		// service-account JSON): up to its END line or the end of the text.
		regexp.MustCompile(`-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|\z)`),
	}
})

// gpuUUID matches GPU and MIG UUIDs.
var gpuUUID = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`\b(GPU|MIG)-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b`)
})

// String returns s with secrets, GPU UUIDs and the host name removed and
// $HOME written as "~". Secrets are what gitleaks' default rules find, what
// ourRules find, long random-looking tokens, URL user information and the
// values of URL query and fragment parameters not known to be harmless.
func (r *Redactor) String(s string) string {
	s = r.urls(s)
	rs, err := gitleaksRules()
	var spans []span
	if err == nil {
		spans, err = rs.find(s)
	}
	if err != nil {
		// The embedded rules are tested; should they fail, hide everything.
		r.Count++
		return redacted
	}
	for _, re := range ourRules() {
		for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
			if len(m) >= 4 && m[2] >= 0 {
				spans = append(spans, span{m[2], m[3]})
			} else {
				spans = append(spans, span{m[0], m[1]})
			}
		}
	}
	spans = append(spans, randomTokens(s)...)
	s = r.replace(s, spans)
	s = gpuUUID().ReplaceAllStringFunc(s, func(u string) string {
		r.Count++
		return u[:4] + "[uuid]"
	})
	if r.Hostname != "" && len(r.Hostname) >= 3 && strings.Contains(s, r.Hostname) {
		r.Count += strings.Count(s, r.Hostname)
		s = strings.ReplaceAll(s, r.Hostname, "[host]")
	}
	if h := strings.TrimSuffix(r.Home, "/"); len(h) > 1 {
		s = replacePathPrefix(s, h, "~")
	}
	return s
}

// tokenTail reports the characters a token goes on with: a match is
// extended over them, so that a rule that matches a token's first n
// characters hides all of it.
func tokenTail(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-'
}

// replace writes redacted over each span, extended to the end of its
// token; overlapping spans become one.
func (r *Redactor) replace(s string, spans []span) string {
	if len(spans) == 0 {
		return s
	}
	for i := range spans {
		for spans[i].end < len(s) && tokenTail(s[spans[i].end]) {
			spans[i].end++
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(b.end, a.end)) })
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		if sp.end <= last {
			continue
		}
		start := max(sp.start, last)
		b.WriteString(s[last:start])
		if start == sp.start {
			b.WriteString(redacted)
			r.Count++
		}
		last = sp.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// randomTokens finds runs of base64 and token characters that look random:
// 32 or more, upper and lower case letters and digits, high entropy, not a
// path. They catch a secret in an innocently named variable, such as a
// 40-character AWS secret access key.
func randomTokens(s string) []span {
	var out []span
	for i := 0; i < len(s); {
		if !base64ish(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && base64ish(s[j]) {
			j++
		}
		if t := s[i:j]; len(t) >= 32 && t[0] != '/' && strings.Count(t, "/") <= len(t)/10 && mixed(t) && shannon(t) >= 4 {
			out = append(out, span{i, j})
		}
		i = j
	}
	return out
}

func base64ish(c byte) bool { return tokenTail(c) || c == '+' || c == '/' || c == '=' }

// mixed reports whether t has upper and lower case letters and digits.
func mixed(t string) bool {
	var up, low, digit bool
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case 'A' <= c && c <= 'Z':
			up = true
		case 'a' <= c && c <= 'z':
			low = true
		case '0' <= c && c <= '9':
			digit = true
		}
	}
	return up && low && digit
}

// harmlessParams are the URL query and fragment parameters whose values are
// shown; every other value is redacted.
var harmlessParams = []string{
	"api-version", "branch", "direction", "expand", "filter", "format", "full", "include", "lang", "limit",
	"locale", "offset", "order", "page", "per_page", "q", "ref", "region", "revision", "search", "sort",
	"stream", "tag", "timeout", "v", "version",
}

// urlDelimiter ends a URL in text.
func urlDelimiter(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'' || c == '`' || c == '<' || c == '>'
}

// urls redacts, in every URL-like token of s, the user information
// (user:password@ or a token alone as the user name; a password may hold
// "/" and "@") and the value of every query and fragment parameter whose
// name is not in harmlessParams.
func (r *Redactor) urls(s string) string {
	if !strings.ContainsAny(s, "@?#") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if urlDelimiter(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && !urlDelimiter(s[j]) {
			j++
		}
		b.WriteString(r.urlToken(s[i:j]))
		i = j
	}
	return b.String()
}

func (r *Redactor) urlToken(tok string) string {
	if k := strings.Index(tok, "://"); k >= 0 {
		rest := tok[k+3:]
		seg := rest
		if e := strings.IndexAny(rest, "/?#"); e >= 0 {
			seg = rest[:e]
		}
		if at := userinfoEnd(rest); at > 0 && strings.ContainsAny(seg, "@:") && rest[:at] != redacted {
			r.Count++
			tok = tok[:k+3] + redacted + rest[at:]
		}
	}
	q := strings.IndexAny(tok, "?#")
	if q < 0 {
		return tok
	}
	var b strings.Builder
	b.WriteString(tok[:q+1])
	for _, part := range splitKeep(tok[q+1:]) {
		sep := ""
		if n := len(part); strings.IndexByte("&;#?", part[n-1]) >= 0 {
			part, sep = part[:n-1], part[n-1:]
		}
		name, value, ok := strings.Cut(part, "=")
		trimmed := strings.TrimRight(value, ").,:]}")
		if !ok || trimmed == "" || strings.HasPrefix(value, redacted) || slices.Contains(harmlessParams, strings.ToLower(name)) {
			b.WriteString(part + sep)
			continue
		}
		r.Count++
		b.WriteString(name + "=" + redacted + value[len(trimmed):] + sep)
	}
	return b.String()
}

// userinfoEnd returns the index in rest (a URL after "://") of the "@" that
// ends its user information: the last "@" followed by something shaped
// like a host, or -1.
func userinfoEnd(rest string) int {
	for at := strings.LastIndexByte(rest, '@'); at >= 0; at = strings.LastIndexByte(rest[:at], '@') {
		host := rest[at+1:]
		if e := strings.IndexAny(host, "/?#"); e >= 0 {
			host = host[:e]
		}
		if host != "" && strings.Trim(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]") == "" {
			return at
		}
	}
	return -1
}

// splitKeep splits a query or fragment after its "?" or "#" into its
// parameters, each with the separator ("&", ";", "#" or "?") that follows
// it.
func splitKeep(q string) []string {
	var out []string
	for q != "" {
		i := strings.IndexAny(q, "&;#?")
		if i < 0 {
			out = append(out, q)
			break
		}
		out = append(out, q[:i+1])
		q = q[i+1:]
	}
	return out
}

// replacePathPrefix replaces dir where it stands as a whole path element
// ("/home/ann" in "/home/ann/x" but not in "/home/anna").
func replacePathPrefix(s, dir, with string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, dir)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(dir)
		whole := end == len(s) || strings.ContainsRune("/ :;,\"')\n", rune(s[end]))
		b.WriteString(s[:i])
		if whole {
			b.WriteString(with)
		} else {
			b.WriteString(dir)
		}
		s = s[end:]
	}
}

// Value redacts every string inside v: strings, slices and maps of the
// shapes encoding/json produces, and []string and map[string]string.
func (r *Redactor) Value(v any) any {
	switch x := v.(type) {
	case string:
		return r.String(x)
	case []string:
		out := make([]string, len(x))
		for i, s := range x {
			out[i] = r.String(s)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.Value(e)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(x))
		for k, e := range x {
			out[r.String(k)] = r.String(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[r.String(k)] = r.Value(e)
		}
		return out
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.Value(e)
		}
		return out
	}
	return v
}

// allowedPrefixes are the variable-name prefixes the report may show.
var allowedPrefixes = []string{"NSS_", "HF_", "HUGGING_FACE_", "VLLM_", "NVIDIA_", "CUDA_", "PYTORCH_", "NCCL_", "OMP_", "TRANSFORMERS_"}

// allowedName reports the single variables the report may show.
func allowedName(name string) bool {
	switch name {
	case "WANDB_MODE", "WANDB_PROJECT",
		"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
		"http_proxy", "https_proxy", "no_proxy", "all_proxy":
		return true
	}
	return false
}

// secretWords mark a variable name whose value is never shown (PASS also
// covers PASSWORD, PASSWD and PASSPHRASE).
var secretWords = []string{"TOKEN", "KEY", "SECRET", "PASS", "PWD", "CREDENTIAL", "AUTH", "COOKIE", "PRIVATE", "SESSION"}

// SecretName reports whether a variable name looks like it holds a secret.
func SecretName(name string) bool {
	up := strings.ToUpper(name)
	for _, w := range secretWords {
		if strings.Contains(up, w) {
			return true
		}
	}
	return false
}

// Allowed reports whether a variable may be shown at all.
func Allowed(name string) bool {
	if allowedName(name) {
		return true
	}
	for _, p := range allowedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Environment returns the variables the report may show, by name, with
// secret-named ones as "set, N chars" and every value scanned; and how many
// variables it left out. The last definition of a name wins.
func (r *Redactor) Environment(environ []string) (shown map[string]string, hidden int) {
	last := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		last[k] = v
	}
	names := make([]string, 0, len(last))
	for k := range last {
		names = append(names, k)
	}
	sort.Strings(names)
	shown = map[string]string{}
	for _, k := range names {
		v := last[k]
		switch {
		case !Allowed(k):
			hidden++
		case SecretName(k):
			r.Count++
			shown[r.String(k)] = "set, " + strconv.Itoa(len(v)) + " chars"
		default:
			shown[r.String(k)] = r.String(v)
		}
	}
	return shown, hidden
}

// Environment without redaction, for --no-redact: every variable as it is.
func Plain(environ []string) map[string]string {
	out := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}
