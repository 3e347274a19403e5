package redact

import (
	"slices"
	"strings"
)

// harmlessParams are the URL query and fragment parameters whose values are
// shown; every other value is redacted.
var harmlessParams = []string{
	"api-version", "branch", "direction", "expand", "filter", "format", "full", "include", "lang", "limit",
	"locale", "offset", "order", "page", "per_page", "q", "ref", "region", "revision", "search", "sort",
	"stream", "tag", "timeout", "v", "version",
}

// urlDelimiter ends a URL in text.
func urlDelimiter(c byte) bool {
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

// urls redacts the user information of every URL in s, then the value of
// every query and fragment parameter whose name is not in harmlessParams.
func (r *Redactor) urls(s string) string {
	return r.queries(r.userinfo(s))
}

// userinfo redacts the user information of every URL in s. After each
// "://" (or ":\/\/"), the URL's authority runs to white space, a quote or
// the next "://"; everything before its last "@" is user information
// (a password may hold "/", "@" and anything else), unless a "/", "?" or
// "#" comes first after a bare host name, which puts that "@" in the path.
// What follows the host does not matter: "(URL):", a comma, an IPv6 zone,
// a non-ASCII host or path. It reads s once, whatever it holds.
func (r *Redactor) userinfo(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	var b strings.Builder
	last := 0
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
		for end < len(s) && !urlDelimiter(s[end]) && (s[end] != ':' || schemeAt(s, end) == 0) {
			end++
		}
		if at := userinfoEnd(s[start:end]); at > 0 && s[start:start+at] != redacted {
			b.WriteString(s[last:start])
			b.WriteString(redacted)
			r.Count++
			last = start + at
		}
		i = end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
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

// queries redacts, in every URL-like token of s, the value of each query
// and fragment parameter whose name is not in harmlessParams.
func (r *Redactor) queries(s string) string {
	if !strings.ContainsAny(s, "?#") {
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
		b.WriteString(r.queryToken(s[i:j]))
		i = j
	}
	return b.String()
}

func (r *Redactor) queryToken(tok string) string {
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

// proxyNames are the variables whose value is a proxy URL (or, NO_PROXY, a
// list of hosts) that curl and Go accept without a scheme: "user:pw@host:port".
var proxyNames = []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "FTP_PROXY"}

// proxyValue redacts a proxy variable's value: each comma-separated entry
// without a scheme is read as if it had one.
func (r *Redactor) proxyValue(v string) string {
	parts := strings.Split(v, ",")
	for i, p := range parts {
		if strings.Contains(p, "://") || !strings.Contains(p, "@") {
			continue
		}
		lead := len(p) - len(strings.TrimLeft(p, " \t"))
		parts[i] = p[:lead] + strings.TrimPrefix(r.userinfo("x://"+p[lead:]), "x://")
	}
	return strings.Join(parts, ",")
}
