// Package online is the --diagnose check that needs the network: whether
// the Hugging Face endpoint and NSS_INFERENCE_ENDPOINT answer. It is a
// package of its own, linked only into nss-diagnose, because net/http and
// crypto/tls initialise themselves in every program that imports them, and
// the start path must not pay for that.
package online

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
)

// onlineTimeout bounds each network probe.
const onlineTimeout = 5 * time.Second

// proxyFor returns the proxy selection of Go's own net/http for the Env's
// HTTPS_PROXY, HTTP_PROXY and NO_PROXY (upper case first, then lower case):
// NO_PROXY's host, domain, CIDR and port rules, and loopback always direct.
func proxyFor(e *check.Env) func(*url.URL) (*url.URL, error) {
	get := func(name string) string {
		if v := e.Get(name); v != "" {
			return v
		}
		return e.Get(strings.ToLower(name))
	}
	cfg := httpproxy.Config{HTTPProxy: get("HTTP_PROXY"), HTTPSProxy: get("HTTPS_PROXY"), NoProxy: get("NO_PROXY")}
	return cfg.ProxyFunc()
}

// Client is the HTTP client the probe uses; nil means one with short
// timeouts whose proxy comes from the Env's variables. Tests may set it.
var Client func(e *check.Env) *http.Client

func client(e *check.Env) *http.Client {
	if Client != nil {
		return Client(e)
	}
	proxy := proxyFor(e)
	return &http.Client{
		Timeout: onlineTimeout,
		Transport: &http.Transport{
			Proxy:                 func(r *http.Request) (*url.URL, error) { return proxy(r.URL) },
			TLSHandshakeTimeout:   onlineTimeout,
			ResponseHeaderTimeout: onlineTimeout,
		},
		// A redirect is an answer: the endpoint is reachable.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// reach sends one unauthenticated GET and says what came back and whether
// that counts as reachable (any HTTP answer below 500).
func reach(ctx context.Context, e *check.Env, raw string) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, onlineTimeout)
	defer cancel()
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "not an http(s) URL", false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return err.Error(), false
	}
	req.Header.Set("User-Agent", "nss-diagnose")
	resp, err := client(e).Do(req)
	if err != nil {
		return err.Error(), false
	}
	resp.Body.Close()
	return "HTTP " + resp.Status, resp.StatusCode < 500
}

// Network checks, with --online only, that the Hugging Face endpoint and
// NSS_INFERENCE_ENDPOINT can be reached. Without --online it connects to
// nothing.
var Network = check.Check{
	ID: "network", Title: "network reachability", Timeout: 2 * onlineTimeout, Doing: "connecting to the endpoints",
	Run: func(ctx context.Context, e *check.Env) check.Result {
		if !e.Online {
			return check.Result{Status: check.Skip, Message: "not checked (run with --online to test the Hugging Face and inference endpoints)"}
		}
		hf := e.Get("HF_ENDPOINT")
		if hf == "" {
			hf = "https://huggingface.co"
		}
		targets := [][2]string{{"Hugging Face", strings.TrimSuffix(hf, "/") + "/api/models?limit=1"}}
		if inf := e.Get("NSS_INFERENCE_ENDPOINT"); inf != "" {
			targets = append(targets, [2]string{"inference endpoint", inf})
		}
		data := map[string]any{}
		var bad, good []string
		for _, t := range targets {
			status, ok := reach(ctx, e, t[1])
			data[t[0]] = map[string]any{"url": t[1], "result": status, "reachable": ok}
			if ok {
				good = append(good, t[0]+": "+status)
			} else {
				bad = append(bad, t[0]+" ("+t[1]+"): "+status)
			}
		}
		if len(bad) > 0 {
			return check.Result{Status: check.Fail, Data: data, Message: "cannot reach " + strings.Join(bad, "; "),
				Hint: "check the network and the proxy variables (HTTPS_PROXY, NO_PROXY), or set HF_HUB_OFFLINE=1 with a mounted cache"}
		}
		return check.Result{Status: check.OK, Data: data, Message: strings.Join(good, "; ")}
	},
}
