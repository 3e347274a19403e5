package redact

import (
	_ "embed"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
)

// gitleaksTOML is gitleaks' default rule set (gitleaks/README.md says
// which version, under which licence, and how to update it).
//
//go:embed gitleaks/gitleaks.toml
var gitleaksTOML string

// tomlConfig is the part of a gitleaks configuration that applies to text
// without a file path.
type tomlConfig struct {
	Allowlist  tomlAllowlist   `toml:"allowlist"`
	Allowlists []tomlAllowlist `toml:"allowlists"`
	Rules      []struct {
		ID          string          `toml:"id"`
		Regex       string          `toml:"regex"`
		SecretGroup int             `toml:"secretGroup"`
		Entropy     float64         `toml:"entropy"`
		Keywords    []string        `toml:"keywords"`
		Path        string          `toml:"path"`
		Allowlists  []tomlAllowlist `toml:"allowlists"`
	} `toml:"rules"`
}

type tomlAllowlist struct {
	Condition   string   `toml:"condition"`
	RegexTarget string   `toml:"regexTarget"`
	Regexes     []string `toml:"regexes"`
	StopWords   []string `toml:"stopwords"`
	Paths       []string `toml:"paths"`
}

// rule is one gitleaks rule. Its expressions are compiled the first time
// a text holds one of its keywords: most rules never meet theirs in a
// report, and compiling all of them would triple the report's run time.
type rule struct {
	id          string
	expr        string
	secretGroup int
	entropy     float64
	// keywords: the rule runs only on text that holds one (lower case).
	keywords  []string
	rawAllows []tomlAllowlist

	once       sync.Once
	re         *regexp.Regexp
	allowlists []allowlist
	err        error
}

// compile compiles the rule's expression and allowlists, once.
func (r *rule) compile() error {
	r.once.Do(func() {
		if r.re, r.err = regexp.Compile(r.expr); r.err != nil {
			r.err = fmt.Errorf("gitleaks rule %s: %w", r.id, r.err)
			return
		}
		for _, a := range r.rawAllows {
			al, err := compileAllowlist(a)
			if err != nil {
				r.err = fmt.Errorf("gitleaks rule %s: %w", r.id, err)
				return
			}
			r.allowlists = append(r.allowlists, al)
		}
	})
	return r.err
}

// allowlist says when a match is not a secret after all.
type allowlist struct {
	and       bool
	target    string // "" (the secret), "match" or "line"
	regexes   []*regexp.Regexp
	stopWords []string
	// paths: an AND allowlist with paths never applies here (no path).
	paths bool
}

// ruleSet is gitleaks' default rules, read on first use.
type ruleSet struct {
	rules  []*rule
	global []allowlist
}

var gitleaksRules = sync.OnceValues(func() (*ruleSet, error) { return compileRules(gitleaksTOML) })

// compileRules reads a gitleaks configuration, leaving out the rules that
// apply only to some file paths or have no regex. The global allowlist is
// compiled now, each rule when it is first needed.
func compileRules(text string) (*ruleSet, error) {
	var c tomlConfig
	if _, err := toml.Decode(text, &c); err != nil {
		return nil, fmt.Errorf("decode the gitleaks rules: %w", err)
	}
	rs := &ruleSet{}
	for _, a := range append([]tomlAllowlist{c.Allowlist}, c.Allowlists...) {
		al, err := compileAllowlist(a)
		if err != nil {
			return nil, fmt.Errorf("gitleaks global allowlist: %w", err)
		}
		rs.global = append(rs.global, al)
	}
	for _, r := range c.Rules {
		if r.Regex == "" || r.Path != "" {
			continue
		}
		cr := &rule{id: r.ID, expr: r.Regex, secretGroup: r.SecretGroup, entropy: r.Entropy, rawAllows: r.Allowlists}
		for _, k := range r.Keywords {
			cr.keywords = append(cr.keywords, strings.ToLower(k))
		}
		rs.rules = append(rs.rules, cr)
	}
	return rs, nil
}

func compileAllowlist(a tomlAllowlist) (allowlist, error) {
	al := allowlist{and: strings.EqualFold(a.Condition, "AND"), target: a.RegexTarget, paths: len(a.Paths) > 0}
	for _, s := range a.Regexes {
		re, err := regexp.Compile(anchorWhole(s))
		if err != nil {
			return al, err
		}
		al.regexes = append(al.regexes, re)
	}
	for _, w := range a.StopWords {
		al.stopWords = append(al.stopWords, strings.ToLower(w))
	}
	return al, nil
}

// anchorWhole repairs an allowlist expression written as ^a|b|c$ (gitleaks'
// global "(?i)^true|false|null$"): by precedence it allows anything that
// starts with "true", contains "false" or ends with "null" (so
// "password=TrueLove2024x" passed), where the whole value was meant. An
// expression whose top level is an alternation, anchored at its start and
// end, becomes ^(?:a|b|c)$; any other is left as it is.
func anchorWhole(expr string) string {
	flags := ""
	if strings.HasPrefix(expr, "(?") {
		if end := strings.IndexByte(expr, ')'); end > 0 && !strings.ContainsAny(expr[2:end], ":(") {
			flags, expr = expr[:end+1], expr[end+1:]
		}
	}
	if !strings.HasPrefix(expr, "^") || !strings.HasSuffix(expr, "$") || strings.HasSuffix(expr, `\$`) {
		return flags + expr
	}
	inner := expr[1 : len(expr)-1]
	depth, class, top := 0, false, false
	for i := 0; i < len(inner); i++ {
		switch c := inner[i]; {
		case c == '\\':
			i++
		case class:
			class = c != ']'
		case c == '[':
			class = true
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '|' && depth == 0:
			top = true
		}
	}
	if !top {
		return flags + expr
	}
	return flags + "^(?:" + inner + ")$"
}

// allows reports whether the allowlist lets a finding pass, as gitleaks
// decides it: with OR, a matching regex or a stop word in the secret is
// enough; with AND, every kind of condition it has must hold.
func (a allowlist) allows(secret, match, line string) bool {
	target := secret
	switch a.target {
	case "match":
		target = match
	case "line":
		target = line
	}
	regexOK := false
	for _, re := range a.regexes {
		if re.MatchString(target) {
			regexOK = true
			break
		}
	}
	stopOK := false
	lower := strings.ToLower(secret)
	for _, w := range a.stopWords {
		if strings.Contains(lower, w) {
			stopOK = true
			break
		}
	}
	if !a.and {
		return regexOK || stopOK
	}
	if a.paths || len(a.regexes) == 0 && len(a.stopWords) == 0 {
		return false
	}
	return (len(a.regexes) == 0 || regexOK) && (len(a.stopWords) == 0 || stopOK)
}

// span is a part of a string to replace.
type span struct{ start, end int }

// find returns the secrets the rules find in s: for each match, the secret
// group (or the first non-empty group, or the whole match) that passes the
// rule's entropy and allowlists. A rule that does not compile is an error.
func (rs *ruleSet) find(s string, late func() bool) ([]span, error) {
	lower := strings.ToLower(s)
	var out []span
	for _, r := range rs.rules {
		if len(r.keywords) > 0 && !containsAny(lower, r.keywords) {
			continue
		}
		if late() {
			return out, nil
		}
		if err := r.compile(); err != nil {
			return nil, err
		}
		for _, m := range r.re.FindAllStringSubmatchIndex(s, -1) {
			start, end := m[0], m[1]
			switch {
			case r.secretGroup > 0 && 2*r.secretGroup+1 < len(m):
				start, end = m[2*r.secretGroup], m[2*r.secretGroup+1]
			case r.secretGroup == 0:
				for g := 1; 2*g+1 < len(m); g++ {
					if m[2*g] >= 0 && m[2*g+1] > m[2*g] {
						start, end = m[2*g], m[2*g+1]
						break
					}
				}
			}
			if start < 0 || end <= start {
				continue
			}
			secret, match := s[start:end], s[m[0]:m[1]]
			if r.entropy != 0 && shannon(secret) <= r.entropy {
				continue
			}
			line := lineAround(s, m[0], m[1])
			if allowed(rs.global, secret, match, line) || allowed(r.allowlists, secret, match, line) {
				continue
			}
			out = append(out, span{start, end})
		}
	}
	return out, nil
}

func allowed(lists []allowlist, secret, match, line string) bool {
	for _, a := range lists {
		if a.allows(secret, match, line) {
			return true
		}
	}
	return false
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// lineAround returns the line(s) of s that hold s[start:end].
func lineAround(s string, start, end int) string {
	from := strings.LastIndexByte(s[:start], '\n') + 1
	to := strings.IndexByte(s[end:], '\n')
	if to < 0 {
		return s[from:]
	}
	return s[from : end+to]
}

// shannon is the Shannon entropy of s in bits per byte, as gitleaks
// measures it.
func shannon(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	h, n := 0.0, float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}
