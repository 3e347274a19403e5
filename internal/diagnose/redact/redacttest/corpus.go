// Package redacttest is the corpus of secrets that the redaction tests
// plant: one of each kind that a report once leaked. The values are made
// up at run time from a fixed seed, so the repository holds no
// token-shaped strings. It exists for tests.
package redacttest

import (
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

	return []Secret{
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
		{Class: "variable named *PASS*", Var: "NSS_DB_PASS", Text: "correct horse battery", Pieces: []string{"correct horse battery"}},
		{Class: "variable named *PWD*", Var: "NSS_SMTP_PWD", Text: "staple-tuesday-42", Pieces: []string{"staple-tuesday-42"}},
		{Class: "variable named *PASSPHRASE*", Var: "HF_KEY_PASSPHRASE", Text: "open sesame please", Pieces: []string{"open sesame please"}},
	}
}
