package redact

import (
	"slices"
	"strings"

	"github.com/nvidia-nemo/nss-entrypoint/internal/secret"
)

// harmlessParams are the URL query and fragment parameters whose values are
// shown; every other value is redacted.
var harmlessParams = []string{
	"api-version", "branch", "direction", "expand", "filter", "format", "full", "include", "lang", "limit",
	"locale", "offset", "order", "page", "per_page", "q", "ref", "region", "revision", "search", "sort",
	"stream", "tag", "timeout", "v", "version",
}

// urls redacts the user information of every URL in s, then the value of
// every query and fragment parameter whose name is not in harmlessParams.
func (r *Redactor) urls(s string) string {
	return r.queries(r.userinfo(s))
}

// userinfo redacts the user information of every URL in s
// (secret.URLUserinfo, shared with the start-up lines).
func (r *Redactor) userinfo(s string) string {
	s, n := secret.URLUserinfo(s)
	r.Count += n
	return s
}

// queries redacts, in every URL-like token of s, the value of each query
// and fragment parameter whose name is not in harmlessParams.
func (r *Redactor) queries(s string) string {
	if !strings.ContainsAny(s, "?#") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if secret.URLDelimiter(s[i]) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && !secret.URLDelimiter(s[j]) {
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
