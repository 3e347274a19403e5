// Package redact keeps secrets, personal paths and machine identifiers out
// of the --diagnose report. Environment variables are shown only from an
// allowlist; any string is scanned for secrets whatever its origin.
package redact

import (
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

// A scanner finds one kind of secret: it returns the start and end of the
// next match at or after from, and its replacement, or -1.
type scanner func(s string, from int) (start, end int, repl string)

// Secrets are found by hand-written scanners rather than regular
// expressions: package regexp pulls Unicode tables whose initialisation
// would run before every container start.
// They are built on first use: package initialisation runs on every
// container start.
var scanners = sync.OnceValue(func() []scanner {
	return []scanner{
		prefixed("hf_", 20, isAlnum, "hf_[redacted]"),
		prefixed("nvapi-", 20, isTokenChar, "nvapi-[redacted]"),
		prefixed("ghp_", 20, isAlnum, "gh_[redacted]"),
		prefixed("gho_", 20, isAlnum, "gh_[redacted]"),
		prefixed("ghu_", 20, isAlnum, "gh_[redacted]"),
		prefixed("ghs_", 20, isAlnum, "gh_[redacted]"),
		prefixed("ghr_", 20, isAlnum, "gh_[redacted]"),
		prefixed("sk-", 20, isTokenChar, "sk-[redacted]"),
		jwt,
		accessKey,
		urlCredentials,
		secretQuery,
		gpuUUID,
	}
})

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isTokenChar(c byte) bool { return isAlnum(c) || c == '_' || c == '-' }

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// wordStart reports whether s[i] starts a word (not preceded by a word char).
func wordStart(s string, i int) bool { return i == 0 || !isAlnum(s[i-1]) }

// run returns the end of the run of chars accepted by ok from i.
func run(s string, i int, ok func(byte) bool) int {
	for i < len(s) && ok(s[i]) {
		i++
	}
	return i
}

// prefixed finds prefix followed by at least min chars accepted by ok.
func prefixed(prefix string, min int, ok func(byte) bool, repl string) scanner {
	return func(s string, from int) (int, int, string) {
		for i := from; ; {
			j := strings.Index(s[i:], prefix)
			if j < 0 {
				return -1, -1, ""
			}
			j += i
			end := run(s, j+len(prefix), ok)
			if wordStart(s, j) && end-j-len(prefix) >= min {
				return j, end, repl
			}
			i = j + 1
		}
	}
}

// jwt finds three base64url parts, the first two starting "eyJ".
func jwt(s string, from int) (int, int, string) {
	for i := from; ; {
		j := strings.Index(s[i:], "eyJ")
		if j < 0 {
			return -1, -1, ""
		}
		j += i
		e1 := run(s, j, isTokenChar)
		if wordStart(s, j) && e1-j >= 8 && e1 < len(s) && s[e1] == '.' && strings.HasPrefix(s[e1+1:], "eyJ") {
			e2 := run(s, e1+1, isTokenChar)
			if e2-e1-1 >= 8 && e2 < len(s) && s[e2] == '.' {
				return j, run(s, e2+1, isTokenChar), "[redacted-jwt]"
			}
		}
		i = j + 1
	}
}

// accessKey finds AKIA or ASIA followed by 16 upper-case letters or digits.
func accessKey(s string, from int) (int, int, string) {
	upperDigit := func(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' }
	for i := from; i+20 <= len(s); i++ {
		if (strings.HasPrefix(s[i:], "AKIA") || strings.HasPrefix(s[i:], "ASIA")) && wordStart(s, i) &&
			run(s, i+4, upperDigit) == i+20 && (i+20 == len(s) || !isAlnum(s[i+20])) {
			return i, i + 20, "[redacted-access-key]"
		}
	}
	return -1, -1, ""
}

// urlCredentials finds the user:password@ of scheme://user:password@host.
func urlCredentials(s string, from int) (int, int, string) {
	for i := from; ; {
		j := strings.Index(s[i:], "://")
		if j < 0 {
			return -1, -1, ""
		}
		start := i + j + 3
		end := start
		for end < len(s) && !strings.ContainsRune("/@ \t\n\"'", rune(s[end])) {
			end++
		}
		if end < len(s) && s[end] == '@' && strings.Contains(s[start:end], ":") {
			return start, end + 1, "[redacted]@"
		}
		i = start
	}
}

// secretParams are query parameters whose values are secrets.
var secretParams = []string{"token", "access_token", "auth", "api_key", "apikey", "key", "secret", "password", "passwd", "sig", "signature", "x-amz-signature"}

// secretQuery finds the value of a secret query parameter (?token=...).
func secretQuery(s string, from int) (int, int, string) {
	lower := strings.ToLower(s)
	best, bestEnd := -1, -1
	for _, p := range secretParams {
		for i := from; ; {
			j := strings.Index(lower[i:], p+"=")
			if j < 0 {
				break
			}
			j += i
			v := j + len(p) + 1
			if j > 0 && strings.ContainsRune("?&;", rune(s[j-1])) {
				end := v
				for end < len(s) && !strings.ContainsRune("& \t\n\"'", rune(s[end])) {
					end++
				}
				if end > v && (best < 0 || v < best) {
					best, bestEnd = v, end
				}
				break
			}
			i = j + 1
		}
	}
	if best < 0 || strings.HasPrefix(s[best:], "[redacted]") {
		return -1, -1, ""
	}
	return best, bestEnd, "[redacted]"
}

// gpuUUID finds GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (or MIG-).
func gpuUUID(s string, from int) (int, int, string) {
	groups := []int{8, 4, 4, 4, 12}
	for i := from; i < len(s); i++ {
		var kind string
		switch {
		case strings.HasPrefix(s[i:], "GPU-"):
			kind = "GPU-"
		case strings.HasPrefix(s[i:], "MIG-"):
			kind = "MIG-"
		default:
			continue
		}
		if !wordStart(s, i) {
			continue
		}
		p, ok := i+4, true
		for g, n := range groups {
			e := run(s, p, isHex)
			if e-p != n {
				ok = false
				break
			}
			p = e
			if g < len(groups)-1 {
				if p >= len(s) || s[p] != '-' {
					ok = false
					break
				}
				p++
			}
		}
		if ok && (p == len(s) || !isAlnum(s[p])) {
			return i, p, kind + "[uuid]"
		}
	}
	return -1, -1, ""
}

// String returns s with secrets, GPU UUIDs and the host name removed and
// $HOME written as "~".
func (r *Redactor) String(s string) string {
	for _, sc := range scanners() {
		var b strings.Builder
		last, changed := 0, false
		for from := 0; from <= len(s); {
			start, end, repl := sc(s, from)
			if start < 0 {
				break
			}
			b.WriteString(s[last:start])
			b.WriteString(repl)
			last, from, changed = end, end, true
			r.Count++
		}
		if changed {
			b.WriteString(s[last:])
			s = b.String()
		}
	}
	if r.Hostname != "" && len(r.Hostname) >= 3 && strings.Contains(s, r.Hostname) {
		r.Count += strings.Count(s, r.Hostname)
		s = strings.ReplaceAll(s, r.Hostname, "[host]")
	}
	if h := strings.TrimSuffix(r.Home, "/"); len(h) > 1 {
		s = replacePathPrefix(s, h, "~")
	}
	return s
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

// secretWords mark a variable name whose value is never shown.
var secretWords = []string{"TOKEN", "KEY", "SECRET", "PASSW", "CREDENTIAL", "AUTH", "COOKIE", "PRIVATE"}

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
