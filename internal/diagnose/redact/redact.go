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
	"time"
	"unicode"

	"github.com/nvidia-nemo/nss-entrypoint/internal/secret"
)

// Redactor scrubs strings and counts what it scrubbed.
type Redactor struct {
	// Home is $HOME; it prints as "~".
	Home string
	// Hostname is left out wherever it stands as a word, in any case.
	Hostname string
	// User is the passwd name of the user the report runs as; it is left out
	// (as "[user]") unless it is a well-known account such as root.
	User string
	// Deadline, when set, is when redaction stops scanning: every string
	// after it is left out whole, so that the report ends in time whatever
	// it holds.
	Deadline time.Time
	// Secrets, when set, finds the values of the environment's
	// secret-named variables wherever they appear (a DB_PASSWORD reused
	// as a path), as the start-up lines do.
	Secrets *secret.Scrubber
	// Count is how many values were redacted so far.
	Count int
}

// redacted replaces every secret.
const redacted = "[redacted]"

// MaxScanned is the longest string redaction scans; a longer one is left
// out whole ("[N bytes, not shown]"): no report value needs more, and it
// bounds the time any one string costs.
const MaxScanned = 16 << 10

// outOfTime replaces the strings met after the Deadline.
const outOfTime = "[not shown: out of time]"

// ourRules cover what gitleaks' default rules do not: each is a regular
// expression whose first group (or, without one, whole match) is the secret.
// Go's regexp runs in time linear in the text.
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
		// Azure storage and service-bus connection strings; a shared access
		// signature whole, up to the next ";" (it holds "&").
		regexp.MustCompile(`(?i)\b(?:AccountKey|SharedAccessKey)=([^;\s"'&]+)`),
		regexp.MustCompile(`(?i)\bSharedAccessSignature=([^;\s"']+)`),
		// A SAS token's signature, in a URL or bare ("sv=...&sig=...").
		regexp.MustCompile(`(?i)(?:^|[?&;#\s"'])sig=([^&;#\s"']+)`),
		// Passwords and other secrets given as key=value text, whatever
		// their length or entropy: password=, pwd=, libpq, ODBC and JDBC
		// strings, db_pass=, client_secret=; "password: x".
		regexp.MustCompile(`(?i)(?:^|[^a-z0-9])(?:password|passwd|passphrase|pwd|pass|pw|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key|credentials?)\s*=\s*("[^"]*"|'[^']*'|[^\s;"'<>]+)`),
		regexp.MustCompile(`(?i)(?:^|[^a-z0-9])(?:password|passwd|passphrase)\s*:\s*("[^"]*"|'[^']*'|[^\s;"'<>]+)`),
		// The same names as a JSON key ({"apiKey": "x"}, {"password": 1}):
		// quoted, so that prose ("no token: ...") is left alone.
		regexp.MustCompile(`(?i)"(?:password|passwd|passphrase|pwd|pass|secret|token|api[_-]?key|access[_-]?token|refresh[_-]?token|access[_-]?key|secret[_-]?key|private[_-]?key|client[_-]?secret|credentials?|auth)"\s*:\s*("(?:[^"\\]|\\.)*"|[^\s,}\]]+)`),
		// An API key header, a Java session id, a bearer token in a URL.
		regexp.MustCompile(`(?i)\bx-api-key\s*:\s*([^\s;"']+)`),
		regexp.MustCompile(`(?i)[;?&]jsessionid=([^;?#&\s"']+)`),
		regexp.MustCompile(`(?i)\bbearer(?:%20|\+)([A-Za-z0-9._~+/=%-]{8,})`),
		// Command-line flags: --db-password X, --token=X.
		regexp.MustCompile(`(?i)(?:^|[\s"'=(\[{,;])--?[a-z0-9_-]*(?:password|passwd|passphrase|pwd|pass|secret|token)(?:=|\s+)("[^"]*"|'[^']*'|[^\s"']+)`),
		// Scheme-less credentials, as proxies take them: user:pw@host.
		regexp.MustCompile(`(?:^|[\s,;=(\[{"'])([A-Za-z0-9._~%!$&*+-]+:[^\s"'/]*)@[A-Za-z0-9\[]`),
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

// String returns s with secrets, GPU UUIDs, the host name and the user
// name removed and $HOME written as "~". Secrets are what gitleaks' default
// rules find, what ourRules find, key-shaped tokens (randomTokens), URL
// user information and the values of URL query and fragment parameters not
// known to be harmless. A string over MaxScanned bytes, or met after the
// Deadline, is left out whole.
func (r *Redactor) String(s string) string {
	if len(s) > MaxScanned {
		r.Count++
		return "[" + strconv.Itoa(len(s)) + " bytes, not shown]"
	}
	if r.late() {
		r.Count++
		return outOfTime
	}
	if r.Secrets != nil {
		var n int
		s, n = r.Secrets.Scrub(s)
		r.Count += n
	}
	s = r.urls(s)
	rs, err := gitleaksRules()
	var spans []span
	if err == nil {
		spans, err = rs.find(s, r.late)
	}
	if err != nil || r.late() {
		// The embedded rules are tested; should they fail, hide everything.
		r.Count++
		return outOfTime
	}
	for _, re := range ourRules() {
		for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
			if len(m) >= 4 && m[2] >= 0 {
				if strings.HasPrefix(s[m[2]:], redacted) || m[3] == m[2] || s[m[2]:m[3]] == `""` || s[m[2]:m[3]] == "''" {
					continue
				}
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
	if h := r.Hostname; len(h) >= 3 {
		// A short all-letter host name ("gpu", "node") is an ordinary word in
		// any other case; it is matched in its own case only.
		s = r.replaceWord(s, h, "[host]", len(h) > 4 || strings.IndexFunc(h, func(c rune) bool { return !unicode.IsLetter(c) }) >= 0)
	}
	if u := r.User; len(u) >= 2 && !wellKnownUser(u) {
		s = r.replaceWord(s, u, "[user]", false)
	}
	if h := strings.TrimSuffix(r.Home, "/"); len(h) > 1 {
		s = replacePathPrefix(s, h, "~")
	}
	return s
}

// late reports whether the Deadline has passed.
func (r *Redactor) late() bool {
	return !r.Deadline.IsZero() && time.Now().After(r.Deadline)
}

// wellKnownUser reports the accounts whose names say nothing about a person.
func wellKnownUser(u string) bool {
	switch u {
	case "root", "nobody", "appuser", "ubuntu", "daemon", "nvidia", "jovyan":
		return true
	}
	return false
}

// wordChar reports the characters that continue a host name or user name.
func wordChar(c byte) bool { return alnum(c) || c == '-' || c == '_' }

// replaceWord replaces word where it stands whole (not inside a longer
// name, not after a "/" that starts a path segment, but after "//" or "@"),
// in any ASCII case when fold is set, and counts the replacements.
func (r *Redactor) replaceWord(s, word, with string, fold bool) string {
	hay, needle := s, word
	if fold {
		hay, needle = asciiLower(s), asciiLower(word)
	}
	var b strings.Builder
	last := 0
	for from := 0; from < len(hay); {
		k := strings.Index(hay[from:], needle)
		if k < 0 {
			break
		}
		i, j := from+k, from+k+len(needle)
		from = i + 1
		if i > 0 && (wordChar(s[i-1]) || s[i-1] == '.' || s[i-1] == '/' && !(i > 1 && s[i-2] == '/')) {
			continue
		}
		if j < len(s) && wordChar(s[j]) {
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(with)
		r.Count++
		last, from = j, j
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// asciiLower lowers ASCII letters only, so that byte offsets stay.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
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

// replacePathPrefix replaces dir where it stands as a whole path element
// at the start of a path ("/home/ann" in "/home/ann/x", but not in
// "/home/anna" nor in "/mnt/home/ann").
func replacePathPrefix(s, dir, with string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, dir)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(dir)
		// A whole element at both ends: "/mnt/home/ann/hf" does not
		// begin with /home/ann.
		whole := (end == len(s) || strings.ContainsRune("/ :;,\"')\n", rune(s[end]))) &&
			(i == 0 || strings.ContainsRune(" :;,\"'(=\n\t[<", rune(s[i-1])))
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

// SecretName reports whether a variable name looks like it holds a secret:
// the start path's rule (secret.Name), one list for both.
func SecretName(name string) bool { return secret.Name(name) }

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
	// The first definition of a name, which getenv(3) and Python read.
	first := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if _, seen := first[k]; !seen {
			first[k] = v
		}
	}
	names := make([]string, 0, len(first))
	for k := range first {
		names = append(names, k)
	}
	sort.Strings(names)
	shown = map[string]string{}
	for _, k := range names {
		v := first[k]
		switch {
		case !Allowed(k):
			hidden++
		case SecretName(k):
			r.Count++
			shown[r.String(k)] = "set, " + strconv.Itoa(len(v)) + " chars"
		case slices.Contains(proxyNames, strings.ToUpper(k)):
			shown[r.String(k)] = r.String(r.proxyValue(v))
		default:
			shown[r.String(k)] = r.String(v)
		}
	}
	return shown, hidden
}

// Plain is Environment without redaction, for --no-redact: every variable
// as it is. The first definition of a name is shown, as in Environment.
func Plain(environ []string) map[string]string {
	out := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if _, seen := out[k]; !seen {
			out[k] = v
		}
	}
	return out
}
