package online

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
)

func env(t *testing.T, environ ...string) *check.Env {
	t.Helper()
	return &check.Env{Root: t.TempDir(), Environ: environ}
}

func run(t *testing.T, e *check.Env) check.Result {
	t.Helper()
	return check.Run(context.Background(), e, []check.Check{Network})[0]
}

func expect(t *testing.T, r check.Result, status check.Status, msg, hint string) {
	t.Helper()
	if r.Status != status || !strings.Contains(r.Message, msg) || !strings.Contains(r.Hint, hint) {
		t.Errorf("got %v %q (hint %q), want %v containing %q and %q", r.Status, r.Message, r.Hint, status, msg, hint)
	}
}

func TestNetwork(t *testing.T) {
	expect(t, run(t, env(t)), check.Skip, "--online", "")
	if r := run(t, env(t)); r.Data != nil {
		t.Errorf("offline run produced data %v", r.Data)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/broken" {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	e := env(t, "HF_ENDPOINT="+srv.URL, "NSS_INFERENCE_ENDPOINT="+srv.URL+"/v1")
	e.Online = true
	expect(t, run(t, e), check.OK, "Hugging Face: HTTP 200 OK; inference endpoint: HTTP 200 OK", "")

	e = env(t, "HF_ENDPOINT="+srv.URL, "NSS_INFERENCE_ENDPOINT="+srv.URL+"/broken")
	e.Online = true
	expect(t, run(t, e), check.Fail, "inference endpoint", "HTTPS_PROXY")

	// A closed port fails fast.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	e = env(t, "HF_ENDPOINT=http://"+addr)
	e.Online = true
	start := time.Now()
	expect(t, run(t, e), check.Fail, "connection refused", "")
	if time.Since(start) > 3*time.Second {
		t.Error("a refused connection took too long")
	}

	// The request goes through HTTP_PROXY when one is set.
	var proxied string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied = r.RequestURI
		w.WriteHeader(http.StatusOK)
	}))
	defer proxy.Close()
	e = env(t, "HF_ENDPOINT=http://hf.invalid", "HTTP_PROXY="+proxy.URL)
	e.Online = true
	expect(t, run(t, e), check.OK, "HTTP 200", "")
	if proxied != "http://hf.invalid/api/models?limit=1" {
		t.Errorf("proxy saw %q", proxied)
	}
	e = env(t, "HF_ENDPOINT="+srv.URL, "HTTP_PROXY=http://127.0.0.1:1", "NO_PROXY=127.0.0.1")
	e.Online = true
	expect(t, run(t, e), check.OK, "HTTP 200", "")
}

func TestNetworkOverTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/models" {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	Client = func(*check.Env) *http.Client {
		c := srv.Client() // trusts the test server's certificate
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		return c
	}
	defer func() { Client = nil }()
	e := env(t, "HF_ENDPOINT="+srv.URL, "NSS_INFERENCE_ENDPOINT="+srv.URL+"/v1")
	e.Online = true
	expect(t, run(t, e), check.OK, "Hugging Face: HTTP 200 OK; inference endpoint: HTTP 302 Found", "")

	// Without the test server's certificate the TLS handshake fails, and
	// the check says so.
	Client = nil
	e = env(t, "HF_ENDPOINT="+srv.URL)
	e.Online = true
	expect(t, run(t, e), check.Fail, "certificate", "HTTPS_PROXY")
}

func TestProxyFor(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		url     string
		want    string // "" for direct
	}{
		{"no proxy set", nil, "https://huggingface.co/api", ""},
		{"https proxy", []string{"HTTPS_PROXY=http://proxy:3128"}, "https://huggingface.co/api", "http://proxy:3128"},
		{"lower case", []string{"https_proxy=proxy:3128"}, "https://huggingface.co/api", "http://proxy:3128"},
		{"upper case wins", []string{"HTTPS_PROXY=http://up:1", "https_proxy=http://low:2"}, "https://hf.co", "http://up:1"},
		{"http proxy for http only", []string{"HTTPS_PROXY=http://s:1", "HTTP_PROXY=http://p:2"}, "http://hf.co", "http://p:2"},
		{"domain suffix", []string{"HTTPS_PROXY=http://p:1", "NO_PROXY=.corp.example"}, "https://infer.corp.example/v1", ""},
		{"domain without dot", []string{"HTTPS_PROXY=http://p:1", "NO_PROXY=corp.example"}, "https://infer.corp.example/v1", ""},
		{"not a suffix match", []string{"HTTPS_PROXY=http://p:1", "NO_PROXY=corp.example"}, "https://notcorp.example/v1", "http://p:1"},
		{"CIDR", []string{"HTTPS_PROXY=http://p:1", "NO_PROXY=10.0.0.0/8"}, "https://10.1.2.3:8000/v1", ""},
		{"outside the CIDR", []string{"HTTPS_PROXY=http://p:1", "NO_PROXY=10.0.0.0/8"}, "https://11.1.2.3/v1", "http://p:1"},
		{"port rule matches", []string{"HTTPS_PROXY=http://p:1", "NO_PROXY=infer.example:8443"}, "https://infer.example:8443/v1", ""},
		{"port rule, other port", []string{"HTTPS_PROXY=http://p:1", "NO_PROXY=infer.example:8443"}, "https://infer.example/v1", "http://p:1"},
		{"loopback is direct", []string{"HTTP_PROXY=http://p:1"}, "http://127.0.0.1:8000/v1", ""},
		{"localhost is direct", []string{"HTTP_PROXY=http://p:1"}, "http://localhost:8000/v1", ""},
		{"star", []string{"HTTPS_PROXY=http://p:1", "NO_PROXY=*"}, "https://hf.co", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			got, err := proxyFor(env(t, tc.environ...))(u)
			if err != nil {
				t.Fatal(err)
			}
			s := ""
			if got != nil {
				s = got.String()
			}
			if s != tc.want {
				t.Errorf("proxy for %s = %q, want %q", tc.url, s, tc.want)
			}
		})
	}
}
