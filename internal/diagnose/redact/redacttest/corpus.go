// Package redacttest is the corpus of secrets that the redaction tests
// plant: one of each kind that a report once leaked. The values are made
// up at run time from a fixed seed, so the repository holds no
// token-shaped strings. It exists for tests.
package redacttest

import (
	"encoding/base64"
	"math/rand/v2"
	"strings"
)

// Secret is one planted secret.
type Secret struct {
	// Class names the kind of secret.
	Class string
	// Var, when set, is the environment variable the secret is planted in
	// by name (its value is Text); otherwise any allowlisted variable will do.
	Var string
	// Text is the secret as it is written, with its surroundings.
	Text string
	// Pieces are the parts of Text that must not appear in a report; a
	// report that shows any of them leaks.
	Pieces []string
	// Proxy: the secret is a proxy setting, planted in the proxy variables
	// (HTTP_PROXY, https_proxy, ALL_PROXY, no_proxy).
	Proxy bool
}

const (
	alnum  = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	word   = alnum + "_"
	b64    = alnum + "+/"
	hex    = "0123456789abcdef"
	digits = "0123456789"
)

// Corpus returns the secrets, the same on every call.
func Corpus() []Secret {
	g := rand.New(rand.NewPCG(10, 2026))
	rnd := func(n int, alphabet string) string {
		var b strings.Builder
		for range n {
			b.WriteByte(alphabet[g.IntN(len(alphabet))])
		}
		return b.String()
	}
	// mixed draws until the string has upper and lower case and digits.
	mixed := func(n int, alphabet string) string {
		for {
			s := rnd(n, alphabet)
			if strings.ContainsAny(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") && strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz") && strings.ContainsAny(s, digits) {
				return s
			}
		}
	}
	one := func(class, text string, pieces ...string) Secret {
		if len(pieces) == 0 {
			pieces = []string{text}
		}
		return Secret{Class: class, Text: text, Pieces: pieces}
	}

	githubPAT := "github_pat_" + mixed(82, word)
	glpat := "glpat-" + mixed(20, alnum)
	xoxb := "xoxb-" + rnd(12, digits) + "-" + rnd(13, digits) + "-" + mixed(24, alnum)
	webhookSecret := mixed(24, alnum)
	webhook := "https://hooks.slack.com/services/T" + rnd(8, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") + "/B" + rnd(8, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") + "/" + webhookSecret
	azureKey := mixed(86, b64) + "=="
	pemLines := []string{mixed(64, b64), mixed(64, b64), mixed(40, b64) + "=="}
	pem := "-----BEGIN RSA PRIVATE KEY-----\n" + strings.Join(pemLines, "\n") + "\n-----END RSA PRIVATE KEY-----\n"
	gcpKeyID := rnd(40, hex)
	gcpLines := []string{mixed(64, b64), mixed(64, b64)}
	gcp := `{"type": "service_account", "project_id": "demo-project", "private_key_id": "` + gcpKeyID +
		`", "private_key": "-----BEGIN PRIVATE KEY-----\n` + strings.Join(gcpLines, `\n`) + `\n-----END PRIVATE KEY-----\n", "client_email": "bot@demo-project.iam.gserviceaccount.com"}`
	bearer := mixed(40, alnum+"-_.")
	awsSecret := mixed(40, b64)
	q := func() string { return "q" + mixed(14, alnum) }
	clientSecret, refreshToken, accessKey, privateToken, code := q(), q(), q(), q(), q()
	fragToken := mixed(30, alnum)
	pwA, pwB, pwC := "Pw/"+mixed(6, alnum), mixed(6, alnum), mixed(6, alnum)
	userToken := mixed(30, alnum)
	lower := "abcdefghijklmnopqrstuvwxyz"
	pw := func() string { return "Pw" + mixed(10, alnum) }
	// URL passwords followed by whatever a message puts after a URL.
	var urlFollowers []Secret
	for _, f := range []string{"):", ",", ";", "}", "*", "!", "|", ")"} {
		p := pw()
		urlFollowers = append(urlFollowers, one("URL password before "+f, "endpoint (http://alice:"+p+"@127.0.0.1:1"+f+" Get", p))
	}
	zonePw, idnPw, pathPw, jsonPw, manyPw := pw(), pw(), pw(), pw(), pw()
	proxyPw := pw()
	sasSig, bareSig := mixed(43, alnum)+"%3D", mixed(43, alnum)+"%3D"
	sasCS := "BlobEndpoint=https://demo.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=b&srt=sco&sp=rw&se=2026-12-31T00:00:00Z&spr=https&sig=" + sasSig
	bare := "sv=2022-11-02&ss=b&srt=sco&sp=rl&se=2026-12-31T00:00:00Z&spr=https&sig=" + bareSig
	human := func(n int) string { return "Hu" + rnd(n, lower) + "7!" }
	pwPlain, pwAmp, pwAt, pwFlag, pwLibpq, pwODBC, pwJDBC := "hunter"+rnd(3, digits), "Tr0ub4dor&"+rnd(3, digits), "p@ssW0rd!"+rnd(4, digits),
		"Summer"+rnd(4, digits)+"!java", human(6), human(6), human(6)
	pwTrue := "TrueLove" + rnd(4, digits) + "x"
	hex40, hex64, low40 := rnd(40, hex), rnd(64, hex), rnd(40, lower+digits)
	uuid := rnd(8, hex) + "-" + rnd(4, hex) + "-4" + rnd(3, hex) + "-a" + rnd(3, hex) + "-" + rnd(12, hex)
	secretFile, slashKey := mixed(40, alnum), "/"+mixed(39, alnum+"+")
	pin := "pin" + rnd(8, digits)
	basic := base64.StdEncoding.EncodeToString([]byte("ann:" + rnd(6, lower)))

	return append([]Secret{
		one("GitHub fine-grained token", githubPAT),
		one("GitLab personal access token", glpat),
		one("Slack bot token", xoxb),
		one("Slack webhook URL", webhook, webhookSecret),
		one("Azure storage account key", "DefaultEndpointsProtocol=https;AccountName=demo;AccountKey="+azureKey+";EndpointSuffix=core.windows.net", azureKey[:40], azureKey[40:80]),
		one("PEM private key", pem, pemLines...),
		one("GCP service-account JSON", gcp, gcpKeyID, gcpLines[0], gcpLines[1]),
		one("Authorization: Bearer", "Authorization: Bearer "+bearer, bearer),
		one("AWS secret access key in an innocently named variable", awsSecret),
		one("query parameters", "https://login.example.com/callback?client_secret="+clientSecret+"&refresh_token="+refreshToken+
			"&access_key="+accessKey+"&private_token="+privateToken+"&code="+code+"&limit=5",
			clientSecret, refreshToken, accessKey, privateToken, code),
		one("access token in a URL fragment", "https://app.example.com/#access_token="+fragToken+"&token_type=bearer", fragToken),
		one("URL password with / and @", "http://ann:"+pwA+"@"+pwB+"@"+pwC+"@proxy.corp.example:3128", pwA, pwB, pwC, strings.TrimPrefix(pwA, "Pw/")),
		one("token as the URL's user name", "https://"+userToken+"@git.example.com/org/repo.git", userToken),
		one("URL password before an IPv6 zone", "http://bob:"+zonePw+"@[fe80::1%25eth0]:3128", zonePw),
		one("URL password before an IDN host", "https://bob:"+idnPw+"@prøxy.example/", idnPw),
		one("URL password before a non-ASCII path", "https://bob:"+pathPw+"@host.example/ünïcode,x", pathPw),
		one("URL password in JSON-escaped text", `{"url": "https:\/\/alice:`+jsonPw+`@host.example\/v1"}`, jsonPw),
		one("URL password holding many @", "http://u:"+manyPw+"@@@@@@@@@@@@@@host", manyPw),
		{Class: "proxy without a scheme", Text: "u:" + proxyPw + "@127.0.0.1:3128", Pieces: []string{proxyPw}, Proxy: true},
		one("Azure SAS in a connection string", sasCS, sasSig, sasSig[:20]),
		one("bare Azure SAS token", bare, bareSig, bareSig[:20]),
		one("password=", "password="+pwPlain, pwPlain),
		one("password= with &", "password="+pwAmp, pwAmp, pwAmp[:9]),
		one("password= with @ and !", "password="+pwAt, pwAt, pwAt[:9]),
		one("password starting with true", "password="+pwTrue, pwTrue),
		one("--db-password flag", "--db-password "+pwFlag, pwFlag),
		one("libpq connection string", "host=db user=app password="+pwLibpq+" dbname=x", pwLibpq),
		one("ODBC connection string", "Driver={ODBC Driver 18};Server=db;Uid=app;Password="+pwODBC+";", pwODBC),
		one("JDBC connection string", "jdbc:sqlserver://db;user=app;password="+pwJDBC, pwJDBC),
		one("40-hex key", hex40),
		one("64-hex key", hex64),
		one("40-character lower-case key", low40),
		one("UUID-style key", uuid),
		one("key as a path component", "/run/secrets/"+secretFile, secretFile),
		one("base64 key starting with /", slashKey, slashKey[1:]),
		one("short base64 user:password", basic),
		{Class: "variable named *PASS*", Var: "NSS_DB_PASS", Text: "correct horse battery", Pieces: []string{"correct horse battery"}},
		{Class: "variable named *PWD*", Var: "NSS_SMTP_PWD", Text: "staple-tuesday-42", Pieces: []string{"staple-tuesday-42"}},
		{Class: "variable named *PASSPHRASE*", Var: "HF_KEY_PASSPHRASE", Text: "open sesame please", Pieces: []string{"open sesame please"}},
		{Class: "variable named *_CREDS", Var: "NSS_DB_CREDS", Text: "app:lower case pw", Pieces: []string{"lower case pw"}},
		{Class: "variable named *_PW", Var: "NSS_DB_PW", Text: "plain words pw", Pieces: []string{"plain words pw"}},
		{Class: "variable named *_PIN", Var: "NSS_SIGNING_PIN", Text: pin, Pieces: []string{pin}},
		{Class: "variable named *_SIG", Var: "NSS_SAS_SIG", Text: "short sig value", Pieces: []string{"short sig value"}},
		{Class: "variable named *_CERT", Var: "NSS_CLIENT_CERT", Text: "cert body text", Pieces: []string{"cert body text"}},
	}, urlFollowers...)
}
