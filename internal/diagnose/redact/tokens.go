package redact

import (
	"encoding/base64"
	"strings"
)

// tokenTail reports the characters a token goes on with: a match is
// extended over them, so that a rule that matches a token's first n
// characters hides all of it.
func tokenTail(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-'
}

func base64ish(c byte) bool { return tokenTail(c) || c == '+' || c == '/' || c == '=' }

func alnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// randomTokens finds what looks like a key by its shape rather than by a
// rule; each scan reads s once:
//
//   - runs of base64 and token characters, 32 or more, with upper and lower
//     case letters and digits and high entropy (a 40-character AWS secret
//     access key in an innocently named variable), also when they start
//     with "/" or hold a few "/" (base64 does), unless they hold "-" or "_"
//     beside a "/" (then they are paths, and only a key-like component of
//     the path is hidden: /run/secrets/<key>);
//   - runs of letters and digits, 32 or more, with both, whatever their
//     case (40- and 64-hex keys, 40-character lower-case keys), except a
//     digest or a commit ("sha256:<hex>", "commit <hex>"), which support
//     needs and which is not a secret;
//   - UUIDs other than GPU and MIG UUIDs (which print as GPU-[uuid]);
//   - short base64 that decodes to "user:password".
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
		out = append(out, keyRun(s, i, j)...)
		i = j
	}
	for i := 0; i < len(s); {
		if !alnum(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && alnum(s[j]) {
			j++
		}
		if t := s[i:j]; len(t) >= 32 && hasLetterAndDigit(t) && shannon(t) >= 3 && !digestContext(s[:i]) {
			out = append(out, span{i, j})
		}
		if uuidAt(s, i) && !(i >= 4 && (s[i-4:i] == "GPU-" || s[i-4:i] == "MIG-")) {
			out = append(out, span{i, i + 36})
		}
		i = j
	}
	out = append(out, basicCredentials(s)...)
	return out
}

// keyRun judges the base64-ish run s[i:j].
func keyRun(s string, i, j int) []span {
	t := s[i:j]
	if len(t) < 16 {
		return nil
	}
	body := strings.TrimLeft(t, "/")
	pathLike := strings.Contains(body, "/") && strings.ContainsAny(body, "-_") || strings.Count(body, "/") > len(body)/10
	if !pathLike && len(body) >= 32 && mixed(body) && shannon(body) >= 4 {
		return []span{{j - len(body), j}}
	}
	if !strings.Contains(t, "/") {
		return nil
	}
	// A path: hide the components that look like keys.
	var out []span
	for k := i; k < j; {
		if s[k] == '/' {
			k++
			continue
		}
		e := k
		for e < j && s[e] != '/' {
			e++
		}
		if c := s[k:e]; len(c) >= 32 && mixed(c) && shannon(c) >= 4 ||
			len(c) >= 16 && !strings.ContainsAny(c, "-_=") && mixed(c) && shannon(c) >= 3.5 {
			out = append(out, span{k, e})
		}
		k = e
	}
	return out
}

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

func hasLetterAndDigit(t string) bool {
	var letter, digit bool
	for i := 0; i < len(t); i++ {
		if c := t[i]; '0' <= c && c <= '9' {
			digit = true
		} else {
			letter = true
		}
	}
	return letter && digit
}

// digestContexts precede a hash that the report shows: an image or file
// digest, a commit or a Hugging Face revision.
var digestContexts = []string{"sha256:", "sha512:", "sha384:", "sha1:", "md5:", "commit ", "commit=", "commit:", "revision=", "revision ", "snapshots/", "+g", ".g"}

func digestContext(before string) bool {
	before = strings.ToLower(before[max(0, len(before)-12):])
	for _, c := range digestContexts {
		if strings.HasSuffix(before, c) {
			return true
		}
	}
	return false
}

// uuidAt reports whether a UUID (8-4-4-4-12 hex digits) starts at s[i] and
// ends at a word boundary.
func uuidAt(s string, i int) bool {
	if len(s)-i < 36 || i+36 < len(s) && alnum(s[i+36]) {
		return false
	}
	for k := 0; k < 36; k++ {
		c := s[i+k]
		if k == 8 || k == 13 || k == 18 || k == 23 {
			if c != '-' {
				return false
			}
		} else if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// basicCredentials finds short base64 (8 to 31 characters, as in a Basic
// authorization) that decodes to printable "user:password".
func basicCredentials(s string) []span {
	var out []span
	for i := 0; i < len(s); {
		c := s[i]
		if !(alnum(c) || c == '+' || c == '/') || i > 0 && (alnum(s[i-1]) || s[i-1] == '+' || s[i-1] == '/') {
			i++
			continue
		}
		j := i
		for j < len(s) && (alnum(s[j]) || s[j] == '+' || s[j] == '/') {
			j++
		}
		e := j
		for e < len(s) && e < j+2 && s[e] == '=' {
			e++
		}
		if n := e - i; n >= 8 && n < 32 && (e == len(s) || !tokenTail(s[e])) && userPass(s[i:e]) {
			out = append(out, span{i, e})
		}
		i = j
	}
	return out
}

func userPass(t string) bool {
	enc := base64.RawStdEncoding
	t = strings.TrimRight(t, "=")
	b, err := enc.DecodeString(t)
	if err != nil {
		return false
	}
	colon := -1
	for k, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
		if c == ':' && colon < 0 {
			colon = k
		}
	}
	return colon > 0 && colon < len(b)-1
}
