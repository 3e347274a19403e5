// Package online is the --diagnose check that needs the network: whether
// the Hugging Face endpoint and NSS_INFERENCE_ENDPOINT can be reached. It is
// a package of its own because package net initialises itself in every
// program that imports it, and the start path must not pay for that.
package online

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/diag"
)

// onlineTimeout bounds each network probe.
const onlineTimeout = 5 * time.Second

// The network probe speaks just enough HTTP/1.1 itself, over package net:
// net/http and crypto/tls would add half a millisecond of package
// initialisation to every container start, and only --online needs them.
// For an https:// endpoint it proves that a TCP connection (through the
// proxy, if one is set) can be made; for http:// it also reads the status.

// proxyFor returns the proxy URL to use for u, from HTTPS_PROXY, HTTP_PROXY
// and NO_PROXY in either case, or nil for a direct connection.
func proxyFor(e *diag.Env, u *url.URL) *url.URL {
	get := func(name string) string {
		if v := e.Get(name); v != "" {
			return v
		}
		return e.Get(strings.ToLower(name))
	}
	host := u.Hostname()
	for _, np := range strings.Split(get("NO_PROXY"), ",") {
		np = strings.TrimPrefix(strings.TrimSpace(np), ".")
		if np == "*" || np != "" && (host == np || strings.HasSuffix(host, "."+np)) {
			return nil
		}
	}
	p := get("HTTP_PROXY")
	if u.Scheme == "https" {
		p = get("HTTPS_PROXY")
	}
	if p == "" {
		return nil
	}
	if !strings.Contains(p, "://") {
		p = "http://" + p
	}
	pu, err := url.Parse(p)
	if err != nil {
		return nil
	}
	return pu
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// reach probes raw and says what it found and whether that counts as
// reachable.
func reach(ctx context.Context, e *diag.Env, raw string) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, onlineTimeout)
	defer cancel()
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "not an http(s) URL", false
	}
	proxy := proxyFor(e, u)
	addr := hostPort(u)
	if proxy != nil {
		addr = hostPort(proxy)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err.Error(), false
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	br := bufio.NewReader(conn)
	switch {
	case u.Scheme == "https" && proxy != nil:
		fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", hostPort(u), hostPort(u))
		status, err := statusLine(br)
		if err != nil {
			return "proxy " + proxy.Host + ": " + err.Error(), false
		}
		return "port 443 reachable through proxy " + proxy.Host + " (" + status + ")", strings.HasPrefix(status, "200")
	case u.Scheme == "https":
		return "port " + u.Port() + " reachable (TCP connect)", true
	}
	target := u.RequestURI()
	if proxy != nil {
		target = u.String()
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: nss-entrypoint-diagnose\r\nConnection: close\r\n\r\n", target, u.Host)
	status, err := statusLine(br)
	if err != nil {
		return err.Error(), false
	}
	return "HTTP " + status, status != "" && status[0] < '5'
}

// statusLine reads "HTTP/1.1 200 OK" and returns "200 OK".
func statusLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("no HTTP answer: %w", err)
	}
	_, status, ok := strings.Cut(strings.TrimSpace(line), " ")
	if !ok || !strings.HasPrefix(line, "HTTP/") {
		return "", fmt.Errorf("not an HTTP answer: %q", strings.TrimSpace(line))
	}
	return status, nil
}

// Network checks, with --online only, that the Hugging Face endpoint and
// NSS_INFERENCE_ENDPOINT can be reached. Without --online it connects to
// nothing.
var Network = diag.Check{
	ID: "network", Title: "network reachability", Timeout: 2 * onlineTimeout, Doing: "connecting to the endpoints",
	Run: func(ctx context.Context, e *diag.Env) diag.Result {
		if !e.Online {
			return diag.Result{Status: diag.Skip, Message: "not checked (run with --online to test the Hugging Face and inference endpoints)"}
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
			return diag.Result{Status: diag.Fail, Data: data, Message: "cannot reach " + strings.Join(bad, "; "),
				Hint: "check the network and the proxy variables (HTTPS_PROXY, NO_PROXY), or set HF_HUB_OFFLINE=1 with a mounted cache"}
		}
		return diag.Result{Status: diag.OK, Data: data, Message: strings.Join(good, "; ")}
	},
}
