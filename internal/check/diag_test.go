package check_test

import (
	"context"
	"fmt"
	"math"

	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/check/checktest"
	"github.com/nvidia-nemo/nss-entrypoint/internal/gpuhelper"
	"github.com/nvidia-nemo/nss-entrypoint/internal/gpureport"
)

func TestWorkspace(t *testing.T) {
	denied := func(string, uint32) error { return unix.EACCES }
	tests := []struct {
		name   string
		env    []string
		files  map[string]string
		access func(string, uint32) error
		status check.Status
		msg    string
		hint   string
	}{
		{"missing", nil, nil, nil, check.Warn, "/workspace does not exist", `-v "$(pwd)/data:/workspace/data"`},
		{"a file", nil, map[string]string{"/workspace": "x"}, nil, check.Warn, "is not a directory", "absolute host path"},
		{"under a file", []string{"NSS_WORKSPACE=/f/ws"}, map[string]string{"/f": "x"}, nil, check.Warn, "/f/ws does not exist: /f on its way is a file, not a directory", "absolute host path"},
		{"under a file, then ..", []string{"NSS_WORKSPACE=/f/../g/ws"}, map[string]string{"/f": "x", "/g/": ""}, nil, check.Warn, "/f/../g/ws does not exist: /f on its way is a file, not a directory", "absolute host path"},
		{"empty", nil, map[string]string{"/workspace/": ""}, nil, check.Warn, "/workspace is empty", `docker run -v "$(pwd)/data:/workspace/data" ...`},
		{"unreadable", nil, map[string]string{"/workspace/data/x": "1"}, denied, check.Warn, "not readable by uid 1000", `--user "$(id -u):$(id -g)"`},
		{"has data", nil, map[string]string{"/workspace/data/x": "1"}, nil, check.OK, "has content", ""},
		{"override", []string{"NSS_WORKSPACE=/data"}, map[string]string{"/data/": ""}, nil, check.Warn, "/data is empty", "/data/data"},
		{"podman phrasing", nil, map[string]string{"/run/.containerenv": "", "/workspace/": ""}, nil, check.Warn, "empty", `podman run -v "$(pwd)/data:/workspace/data:Z" ...`},
		// Only empty folders: what a mistyped host path mounted at
		// /workspace/data leaves, or a first run's empty cache folder.
		{"only an empty data", nil, map[string]string{"/workspace/data/": ""}, nil, check.Warn, "/workspace holds only empty folders (data): no data is mounted there", `docker run -v "$(pwd)/data:/workspace/data" ...`},
		{"empty data and .hf_cache", nil, map[string]string{"/workspace/data/": "", "/workspace/.hf_cache/": ""}, nil, check.Warn, "/workspace holds only empty folders (.hf_cache, data): no data is mounted there", "absolute host path"},
		{"16 empty folders", nil, emptyFolders(16), nil, check.Warn, "holds only empty folders (d00, d01,", "absolute host path"},
		{"empty folders holding write probes", nil, map[string]string{"/workspace/data/" + check.WriteProbePrefix + "1": "", "/workspace/" + check.WriteProbePrefix + "2": ""}, nil, check.Warn, "/workspace holds only empty folders (data): no data is mounted there", "absolute host path"},
		{"empty bind mount", nil, map[string]string{"/proc/self/mountinfo": bindAt("/home/u/dta", "/workspace/data"), "/workspace/data/": ""}, nil, check.Warn,
			"/workspace holds only empty folders (data): the host folder mounted at /workspace/data is empty or did not exist (Docker creates a missing host folder, empty)",
			`check the host path for a typo, and mount the folder that holds your data with an absolute host path: docker run -v "$(pwd)/data:/workspace/data" ...`},
		{"empty bind mount, podman", nil, map[string]string{"/run/.containerenv": "", "/proc/self/mountinfo": bindAt("/home/u/dta", "/workspace/data"), "/workspace/data/": ""}, nil, check.Warn,
			"/workspace holds only empty folders (data): the host folder mounted at /workspace/data is empty", `podman run -v "$(pwd)/data:/workspace/data:Z" ...`},
		{"empty bind mount beside an empty folder", nil, map[string]string{"/proc/self/mountinfo": bindAt("/home/u/dta", "/workspace/data"), "/workspace/data/": "", "/workspace/.hf_cache/": ""}, nil, check.Warn,
			"/workspace holds only empty folders (.hf_cache, data): the host folder mounted at /workspace/data is empty or did not exist", `"$(pwd)/data:/workspace/data"`},
		// The workspace itself a mount of a mistyped host path
		// (-v /typo:/workspace): empty, and said what is mounted there.
		{"the workspace an empty bind mount", nil, map[string]string{"/proc/self/mountinfo": bindAt("/home/u/dta", "/workspace"), "/workspace/": ""}, nil, check.Warn,
			"/workspace is empty: the host folder mounted at /workspace is empty or did not exist (Docker creates a missing host folder, empty)",
			`check the host path for a typo, and mount the folder that holds your data with an absolute host path: docker run -v "$(pwd)/data:/workspace/data" ...`},
		// A name that would read as two is quoted.
		{"an empty folder named with a comma", nil, map[string]string{"/workspace/a, b/": "", "/workspace/data/": ""}, nil, check.Warn,
			`/workspace holds only empty folders ("a, b", data)`, "absolute host path"},
		// Anything else is data.
		{"empty data and a file at the top", nil, map[string]string{"/workspace/data/": "", "/workspace/notes.txt": "x"}, nil, check.OK, "has content", ""},
		{"data holding an empty folder", nil, map[string]string{"/workspace/data/raw/": ""}, nil, check.OK, "has content", ""},
		{"data holding a file, beside an empty folder", nil, map[string]string{"/workspace/data/x": "1", "/workspace/.hf_cache/": ""}, nil, check.OK, "has content", ""},
		{"17 empty folders", nil, emptyFolders(17), nil, check.OK, "has content", ""},
		{"a symbolic link to an empty folder", nil, map[string]string{"/elsewhere/": "", "/workspace/data": "->/elsewhere"}, nil, check.OK, "has content", ""},
		{"an empty folder on a filesystem that may hang is not opened", nil, map[string]string{"/proc/self/mountinfo": "22 1 0:50 / / rw - overlay overlay rw\n30 22 0:45 / /workspace/data rw - fuse.gcsfuse bucket rw\n", "/workspace/data/": ""}, nil, check.OK, "has content", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t, tc.env...)
			checktest.Mk(t, e, tc.files)
			if tc.access != nil {
				e.Access = tc.access
			}
			checktest.Expect(t, checktest.Run(t, check.Workspace, e), tc.status, tc.msg, tc.hint)
		})
	}
}

// emptyFolders is a workspace of n empty folders, d00 to d(n-1).
func emptyFolders(n int) map[string]string {
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("/workspace/d%02d/", i)] = ""
	}
	return files
}

// bindAt is a mount table with host folder host bind-mounted at point.
func bindAt(host, point string) string {
	return "22 1 0:50 / / rw - overlay overlay rw\n30 22 8:1 " + host + " " + point + " rw - ext4 /dev/sda1 rw\n"
}

func TestWorkspaceReadsOneEntry(t *testing.T) {
	e := checktest.FakeEnv(t)
	files := map[string]string{}
	for i := 0; i < 5000; i++ {
		files["/workspace/f"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String()] = ""
	}
	checktest.Mk(t, e, files)
	// A directory with thousands of entries is judged from its first one;
	// the check must neither fail nor list them all (Readdirnames(1)).
	checktest.Expect(t, checktest.Run(t, check.Workspace, e), check.OK, "has content", "")
}

func TestHFCache(t *testing.T) {
	tests := []struct {
		name   string
		env    []string
		files  map[string]string
		access func(string, uint32) error
		status check.Status
		msg    string
		hint   string
	}{
		{"unset", nil, nil, nil, check.Warn, "HF_HOME is not set", `-e HF_HOME=/workspace/.hf_cache`},
		// Set but empty is not unset: huggingface_hub takes "" as it is,
		// a cache in the working directory itself (here /wd).
		{"empty", []string{"HF_HOME="}, nil, nil, check.Warn, "HF_HOME is set but empty: huggingface_hub then keeps its cache in the working directory itself (/wd)", "HF_HOME=/workspace/.hf_cache"},
		{"empty once expanded", []string{"HF_HOME=$EMPTY", "EMPTY="}, nil, nil, check.Warn, "HF_HOME=$EMPTY is empty once expanded: huggingface_hub then keeps its cache in the working directory itself (/wd)", "HF_HOME=/workspace/.hf_cache"},
		{"unset, XDG_CACHE_HOME empty", []string{"XDG_CACHE_HOME="}, nil, nil, check.Warn, "HF_HOME is not set and XDG_CACHE_HOME is set but empty: huggingface_hub then keeps its cache in the relative folder huggingface of the working directory (/wd/huggingface)", "HF_HOME=/workspace/.hf_cache"},
		{"unset, XDG_CACHE_HOME relative", []string{"XDG_CACHE_HOME=cache"}, nil, nil, check.Warn, "HF_HOME is not set and XDG_CACHE_HOME=cache is a relative path: huggingface_hub then keeps its cache in the relative folder cache/huggingface of the working directory (/wd/cache/huggingface)", "HF_HOME=/workspace/.hf_cache"},
		{"missing", []string{"HF_HOME=/hf"}, nil, nil, check.Warn, "HF_HOME=/hf does not exist", `:/hf"`},
		{"a file", []string{"HF_HOME=/hf"}, map[string]string{"/hf": "x"}, nil, check.Warn, "is not a directory", "HF_HOME"},
		{"under a file", []string{"HF_HOME=/f/hf"}, map[string]string{"/f": "x"}, nil, check.Warn, "HF_HOME=/f/hf does not exist: /f on its way is a file, not a directory", "HF_HOME"},
		{"read-only", []string{"HF_HOME=/hf"}, map[string]string{"/hf/": ""}, func(string, uint32) error { return unix.EROFS }, check.Warn, "HF_HOME=/hf is on a read-only filesystem", "drop :ro"},
		{"not writable", []string{"HF_HOME=/hf"}, map[string]string{"/hf/": ""}, func(string, uint32) error { return unix.EACCES }, check.Warn, "not writable by uid 1000", "--user"},
		{"a loop of links", []string{"HF_HOME=/loop"}, map[string]string{"/loop": "->/loop"}, nil, check.Warn, "HF_HOME=/loop is a loop of symbolic links", "ls -l"},
		{"a name too long", []string{"HF_HOME=/" + strings.Repeat("x", 300)}, nil, nil, check.Warn, "too long a path", "shorter"},
		{"tilde", []string{"HF_HOME=~/hf", "HOME=/home/u"}, map[string]string{"/home/u/hf/": ""}, nil, check.OK, "HF_HOME=~/hf (/home/u/hf) is a writable directory", ""},
		{"$HOME", []string{"HF_HOME=$HOME/hf", "HOME=/home/u"}, map[string]string{"/home/u/hf/": ""}, nil, check.OK, "HF_HOME=$HOME/hf (/home/u/hf) is a writable directory", ""},
		{"${HOME} missing", []string{"HF_HOME=${HOME}/hf", "HOME=/home/u"}, nil, nil, check.Warn, "HF_HOME=${HOME}/hf (/home/u/hf) does not exist", `-v "$HOME/.cache/huggingface:/home/u/hf"`},
		{"unset variable kept", []string{"HF_HOME=$NOPE/hf"}, nil, nil, check.Warn, "HF_HOME=$NOPE/hf is a relative path", ""},
		{"ok", []string{"HF_HOME=/hf"}, map[string]string{"/hf/": ""}, nil, check.OK, "writable directory", ""},
		{"kubernetes phrasing", []string{"KUBERNETES_SERVICE_HOST=10.0.0.1"}, nil, nil, check.Warn, "not set", "mount a volume"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t, tc.env...)
			e.Dir = "/wd"
			checktest.Mk(t, e, tc.files)
			if tc.access != nil {
				e.Access = tc.access
			}
			checktest.Expect(t, checktest.Run(t, check.HFCache, e), tc.status, tc.msg, tc.hint)
		})
	}
}

const secret = "hf_SECRETtokenVALUE0123456789abcdef"

func TestHFToken(t *testing.T) {
	tests := []struct {
		name   string
		env    []string
		files  map[string]string
		status check.Status
		msg    string
		source string
	}{
		{"none", []string{"HOME=/home/u"}, nil, check.Warn, "no Hugging Face token", ""},
		{"no HOME", nil, nil, check.Warn, "no Hugging Face token", ""},
		{"HF_TOKEN", []string{"HF_TOKEN=" + secret}, nil, check.OK, "token found in HF_TOKEN", "HF_TOKEN"},
		{"HF_TOKEN empty falls through", []string{"HF_TOKEN=", "HUGGING_FACE_HUB_TOKEN=" + secret}, nil, check.OK, "HUGGING_FACE_HUB_TOKEN", "HUGGING_FACE_HUB_TOKEN"},
		{"HF_TOKEN_PATH", []string{"HF_TOKEN_PATH=/run/secrets/hf"}, map[string]string{"/run/secrets/hf": secret + "\n"}, check.OK, "/run/secrets/hf", "file"},
		{"HF_TOKEN_PATH wins over HF_HOME", []string{"HF_TOKEN_PATH=/nope", "HF_HOME=/hf"}, map[string]string{"/hf/token": secret}, check.Warn, "no Hugging Face token", ""},
		{"HF_HOME token", []string{"HF_HOME=/hf"}, map[string]string{"/hf/token": secret}, check.OK, "/hf/token", "file"},
		{"XDG cache", []string{"XDG_CACHE_HOME=/xdg", "HOME=/home/u"}, map[string]string{"/xdg/huggingface/token": secret}, check.OK, "/xdg/huggingface/token", "file"},
		{"HOME token", []string{"HOME=/home/u"}, map[string]string{"/home/u/.cache/huggingface/token": secret}, check.OK, "/home/u/.cache/huggingface/token", "file"},
		{"empty file", []string{"HOME=/home/u"}, map[string]string{"/home/u/.cache/huggingface/token": "\n  \n"}, check.Warn, "token file /home/u/.cache/huggingface/token holds only white space", ""},
		{"NUL bytes", []string{"HOME=/home/u"}, map[string]string{"/home/u/.cache/huggingface/token": "\x00\x00\x00\x00"}, check.Warn, "holds NUL bytes or other control characters", ""},
		{"no file", []string{"HOME=/home/u"}, nil, check.Warn, "no Hugging Face token", ""},
		{"a loop of links", []string{"HF_TOKEN_PATH=/loop"}, map[string]string{"/loop": "->/loop"}, check.Warn, "token file /loop is a loop of symbolic links; gated models", ""},
		{"a name too long", []string{"HF_TOKEN_PATH=/" + strings.Repeat("x", 300)}, nil, check.Warn, "too long a path for this system; gated models", ""},
		{"a directory", []string{"HF_TOKEN_PATH=/d"}, map[string]string{"/d/": ""}, check.Warn, "token file /d cannot be inspected: is a directory", ""},
		{"HF_HOME with a tilde", []string{"HOME=/home/u", "HF_HOME=~/hf"}, map[string]string{"/home/u/hf/token": "hf_abcdefgh"}, check.OK, "token found in /home/u/hf/token", "file"},
		{"white space inside", []string{"HF_TOKEN=hf_abc def"}, nil, check.Warn, "white space inside", "HF_TOKEN"},
		// As huggingface_hub reads a token: HF_TOKEN if not empty, else
		// HUGGING_FACE_HUB_TOKEN, with CR and LF removed anywhere and the
		// ends trimmed; nothing left, the token file. HF_TOKEN_PATH is
		// expanded (~, $VAR); ~ is passwd's home where HOME is unset.
		{"HF_TOKEN blank hides HUGGING_FACE_HUB_TOKEN", []string{"HF_TOKEN=  ", "HUGGING_FACE_HUB_TOKEN=" + secret, "HOME=/home/u"}, nil, check.Warn, "no Hugging Face token", ""},
		{"a line break inside HF_TOKEN is removed", []string{"HF_TOKEN=hf_abcd\nefgh"}, nil, check.OK, "token found in HF_TOKEN (11 chars)", "HF_TOKEN"},
		{"CR LF inside the token file", []string{"HOME=/home/u"}, map[string]string{"/home/u/.cache/huggingface/token": "hf_abcd\r\nefgh\r\n"}, check.OK, "(11 chars)", "file"},
		{"HF_TOKEN_PATH with a tilde", []string{"HOME=/home/u", "HF_TOKEN_PATH=~/tok"}, map[string]string{"/home/u/tok": secret}, check.OK, "token found in /home/u/tok", "file"},
		{"HF_TOKEN_PATH with $HOME", []string{"HOME=/home/u", "HF_TOKEN_PATH=$HOME/tok"}, map[string]string{"/home/u/tok": secret}, check.OK, "token found in /home/u/tok", "file"},
		// What huggingface_hub would send with the token, not trim.
		{"HF_TOKEN in quotes (--env-file)", []string{`HF_TOKEN="hf_abcdefgh"`}, nil, check.Warn, "wrapped in quotes", "HF_TOKEN"},
		{"a byte-order mark in the token file", []string{"HOME=/home/u"}, map[string]string{"/home/u/.cache/huggingface/token": "\ufeffhf_abcdefgh\n"}, check.Warn, "preceded by a byte-order mark", "file"},
		{"an assignment in the token file", []string{"HOME=/home/u"}, map[string]string{"/home/u/.cache/huggingface/token": "HF_TOKEN=hf_abcdefgh\n"}, check.Warn, "preceded by an assignment (HF_TOKEN=)", "file"},
		{"HOME unset: passwd's home", nil, map[string]string{"/etc/passwd": "u:x:1000:1000::/home/u:/bin/sh\n", "/home/u/.cache/huggingface/token": secret}, check.OK, "token found in /home/u/.cache/huggingface/token", "file"},
		// Set but empty is not unset (huggingface_hub's os.getenv with a
		// default), and a relative path is read from the working
		// directory, here /wd: HF_HOME="" makes the token file "token",
		// XDG_CACHE_HOME="" makes it "huggingface/token", and
		// HF_TOKEN_PATH="" is "", which pathlib reads as "." (a
		// directory: huggingface_hub raises IsADirectoryError).
		{"HF_HOME empty: the token file is token in the working directory", []string{"HF_HOME=", "HOME=/home/u"}, map[string]string{"/wd/token": secret, "/home/u/.cache/huggingface/token": "hf_other"}, check.OK, "token found in /wd/token", "file"},
		{"HF_HOME empty hides ~/.cache/huggingface/token", []string{"HF_HOME=", "HOME=/home/u"}, map[string]string{"/wd/": "", "/home/u/.cache/huggingface/token": secret}, check.Warn, "no Hugging Face token", ""},
		{"XDG_CACHE_HOME empty: huggingface/token in the working directory", []string{"XDG_CACHE_HOME=", "HOME=/home/u"}, map[string]string{"/wd/huggingface/token": secret}, check.OK, "token found in /wd/huggingface/token", "file"},
		{"HF_TOKEN_PATH empty: the working directory is read as the token file", []string{"HF_TOKEN_PATH=", "HOME=/home/u"}, map[string]string{"/wd/": "", "/home/u/.cache/huggingface/token": secret}, check.Warn, "HF_TOKEN_PATH is set but empty: huggingface_hub then reads the working directory /wd as its token file, which fails (is a directory)", ""},
		{"HF_TOKEN_PATH empty once expanded", []string{"HF_TOKEN_PATH=$EMPTY", "EMPTY=", "HOME=/home/u"}, map[string]string{"/wd/": "", "/home/u/.cache/huggingface/token": secret}, check.Warn, "HF_TOKEN_PATH=$EMPTY is empty once expanded: huggingface_hub then reads the working directory /wd as its token file", ""},
		{"HF_TOKEN_PATH relative", []string{"HF_TOKEN_PATH=tok"}, map[string]string{"/wd/tok": secret}, check.OK, "token found in /wd/tok", "file"},
		// HF_HOME is expanded once, then the token path built on it once
		// more: a variable that holds "~/hf" ends as the home's hf.
		{"the token path is expanded again", []string{"HOME=/home/u", "HF_HOME=$H", "H=~/hf"}, map[string]string{"/home/u/hf/token": secret}, check.OK, "token found in /home/u/hf/token", "file"},
		// No HOME and no passwd entry: "~" stays, a relative path.
		{"no home at all: ~ stays, relative", nil, map[string]string{"/wd/~/.cache/huggingface/token": secret}, check.OK, "token found in /wd/~/.cache/huggingface/token", "file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t, tc.env...)
			e.Dir = "/wd"
			checktest.Mk(t, e, tc.files)
			r := checktest.Run(t, check.HFToken, e)
			hint := ""
			if tc.status != check.OK {
				hint = "HF_"
			}
			checktest.Expect(t, r, tc.status, tc.msg, hint)
			if got, _ := r.Data["source"].(string); got != tc.source {
				t.Errorf("source %q, want %q", got, tc.source)
			}
			if strings.Contains(r.Message+r.Hint+fmtData(r.Data), "SECRET") {
				t.Errorf("the token leaked into the result: %+v", r)
			}
		})
	}
}

// With no Dir and no root, as in the entrypoint, a relative token file
// (HF_HOME="" makes it "token") is read from the process's own working
// directory, which the target inherits.
func TestHFTokenInTheProcessWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &check.Env{Environ: []string{"HF_HOME=", "HOME=" + t.TempDir()}, UID: -1, GID: -1}
	r := check.HFToken.Run(t.Context(), e)
	if r.Status != check.OK || r.Message != "token found in "+filepath.Join(dir, "token")+" (35 chars)" {
		t.Errorf("%+v", r)
	}
}

func fmtData(m map[string]any) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(strings.TrimSpace(strings.ReplaceAll(stringify(v), "\n", " ")))
		b.WriteString(";")
	}
	return b.String()
}

func stringify(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []string:
		return strings.Join(x, ",")
	}
	return ""
}

func TestShm(t *testing.T) {
	tests := []struct {
		name   string
		size   uint64
		err    error
		env    []string
		files  map[string]string
		status check.Status
		msg    string
		hint   string
		fsType int64 // 0: tmpfs
		flags  int64
	}{
		{"docker default", 64 << 20, nil, nil, map[string]string{"/.dockerenv": ""}, check.Warn, "/dev/shm is 64 MiB", "docker run --shm-size=1g ... (or --ipc=host)", 0, 0},
		{"just below", check.MinShm - 1, nil, nil, nil, check.Warn, "Bus error", "--shm-size=1g", 0, 0},
		{"exactly enough", check.MinShm, nil, nil, nil, check.OK, "/dev/shm is 256 MiB", "", 0, 0},
		{"large", 128 << 30, nil, nil, nil, check.OK, "128 GiB", "", 0, 0},
		{"missing", 0, os.ErrNotExist, nil, nil, check.Warn, "/dev/shm does not exist", "--shm-size=1g", 0, 0},
		{"statfs error", 0, unix.EIO, nil, nil, check.Warn, "cannot be inspected", "--shm-size", 0, 0},
		{"kubernetes", 64 << 20, nil, []string{"KUBERNETES_SERVICE_HOST=x"}, nil, check.Warn, "64 MiB", "emptyDir volume with medium: Memory", 0, 0},
		{"not a tmpfs (no --ipc, the image's own directory)", 100 << 30, nil, nil, nil, check.Warn, "/dev/shm is not a tmpfs (filesystem type 0x794c7630)", "--shm-size=1g", 0x794c7630, 0},
		{"read-only", 1 << 30, nil, nil, nil, check.Warn, "/dev/shm is read-only", "--shm-size=1g", 0, unix.ST_RDONLY},
		{"a regular file", 1 << 30, nil, nil, map[string]string{"/dev/shm": "x"}, check.Warn, "/dev/shm is a regular file, not a directory", "--shm-size=1g", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t, tc.env...)
			checktest.Mk(t, e, tc.files)
			e.Statfs = func(path string) (check.FSInfo, error) {
				if path != e.Path("/dev/shm") {
					t.Errorf("statfs of %q", path)
				}
				typ := tc.fsType
				if typ == 0 {
					typ = unix.TMPFS_MAGIC
				}
				return check.FSInfo{Type: typ, Flags: tc.flags, Total: tc.size, Free: tc.size}, tc.err
			}
			checktest.Expect(t, checktest.Run(t, check.Shm, e), tc.status, tc.msg, tc.hint)
		})
	}
}

func TestGPUWithoutDevicesNeverStartsTheHelper(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		msg   string
	}{
		{"nothing", nil, "no GPU is visible in this container"},
		{"driver but no nodes", map[string]string{"/proc/driver/nvidia/gpus/": ""}, "the host has an NVIDIA driver but this container was given no GPU device"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t)
			checktest.Mk(t, e, tc.files)
			var calls atomic.Int32
			e.GPU = func(context.Context) gpuhelper.Outcome { calls.Add(1); return gpuhelper.Outcome{} }
			checktest.Expect(t, checktest.Run(t, check.GPU, e), check.Fail, tc.msg, "--gpus all")
			if calls.Load() != 0 {
				t.Errorf("the helper ran %d times", calls.Load())
			}
		})
	}
}

func TestGPUOutcomes(t *testing.T) {
	countLost := checktest.Healthy(0)
	countLost.DeviceCountError = &gpureport.NVMLError{Function: "nvmlDeviceGetCount", Code: 15, Name: "ERROR_GPU_IS_LOST"}
	handleLost := checktest.Healthy(2)
	handleLost.Devices[1].Errors = map[string]gpureport.NVMLError{"handle": {Code: gpureport.CodeGPUIsLost, Name: "ERROR_GPU_IS_LOST"}}
	mixed := checktest.Healthy(2)
	mixed.Devices[1].Name, mixed.Devices[1].MemoryTotalBytes = "NVIDIA A100-SXM4-80GB", 80<<30

	tests := []struct {
		name    string
		outcome gpuhelper.Outcome
		status  check.Status
		msg     string
		hint    string
	}{
		{"one GPU", gpuhelper.Outcome{Report: checktest.Healthy(1)}, check.OK, "1 GPU: NVIDIA H200 (140.4 GiB), driver 580.159.04, CUDA 13.0", ""},
		{"eight GPUs", gpuhelper.Outcome{Report: checktest.Healthy(8)}, check.OK, "8 GPUs: 8x NVIDIA H200 (140.4 GiB), driver", ""},
		{"mixed GPUs", gpuhelper.Outcome{Report: mixed}, check.OK, "2 GPUs: NVIDIA H200 (140.4 GiB), NVIDIA A100-SXM4-80GB (80 GiB)", ""},
		{"zero devices", gpuhelper.Outcome{Report: checktest.Healthy(0)}, check.Fail, "no GPU is visible to this container", "NVIDIA_VISIBLE_DEVICES"},
		{"library not found", gpuhelper.Outcome{Report: checktest.Failed(12, "ERROR_LIBRARY_NOT_FOUND")}, check.Fail, "libnvidia-ml.so.1 is not in the container", "NVIDIA Container Toolkit"},
		{"driver not loaded", gpuhelper.Outcome{Report: checktest.Failed(9, "ERROR_DRIVER_NOT_LOADED")}, check.Fail, "kernel driver is not loaded", "modprobe nvidia"},
		{"no permission", gpuhelper.Outcome{Report: checktest.Failed(4, "ERROR_NO_PERMISSION")}, check.Fail, "no permission", "--gpus all"},
		{"unknown", gpuhelper.Outcome{Report: checktest.Failed(999, "ERROR_UNKNOWN")}, check.Fail, "daemon-reload", "restart the container"},
		{"version mismatch", gpuhelper.Outcome{Report: checktest.Failed(18, "ERROR_LIB_RM_VERSION_MISMATCH")}, check.Fail, "versions differ", "reboot the host"},
		{"gpu lost at init", gpuhelper.Outcome{Report: checktest.Failed(15, "ERROR_GPU_IS_LOST")}, check.Fail, "fallen off the bus", "Xid 79"},
		{"gpu lost at count", gpuhelper.Outcome{Report: countLost}, check.Fail, "fallen off the bus", "Xid 79"},
		{"gpu lost at handle", gpuhelper.Outcome{Report: handleLost}, check.Fail, "fallen off the bus", "Xid 79"},
		{"other code", gpuhelper.Outcome{Report: checktest.Failed(17, "ERROR_OPERATING_SYSTEM")}, check.Fail, "ERROR_OPERATING_SYSTEM (17)", "nvidia-smi"},
		{"helper missing", gpuhelper.Outcome{Failure: gpuhelper.Missing, Detail: "/x/nss-gpu-probe does not exist"}, check.Warn, "nss-gpu-probe is missing", "NSS_GPU_PROBE"},
		{"timed out", gpuhelper.Outcome{Failure: gpuhelper.TimedOut}, check.Warn, "did not answer in time", "NSS_ENTRYPOINT_TIMEOUT"},
		{"crashed", gpuhelper.Outcome{Failure: gpuhelper.Crashed, Detail: "killed by signal SIGSEGV"}, check.Warn, "crashed", "nvidia-smi"},
		{"garbage", gpuhelper.Outcome{Failure: gpuhelper.Garbage, Detail: "decode"}, check.Warn, "unreadable report", "rebuild the image"},
		{"exited", gpuhelper.Outcome{Failure: gpuhelper.Exited, Detail: "exit status 127"}, check.Warn, "exit status 127", "nss-gpu-probe"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := checktest.FakeEnv(t)
			checktest.Mk(t, e, checktest.CUDANodes)
			var calls atomic.Int32
			e.GPU = func(context.Context) gpuhelper.Outcome { calls.Add(1); return tc.outcome }
			checktest.Expect(t, checktest.Run(t, check.GPU, e), tc.status, tc.msg, tc.hint)
			if calls.Load() != 1 {
				t.Errorf("helper ran %d times, want 1", calls.Load())
			}
		})
	}
}

func TestRunOrderPanicAndTimeout(t *testing.T) {
	e := checktest.FakeEnv(t)
	slow := check.Check{ID: "slow", Title: "slow check", Run: func(ctx context.Context, e *check.Env) check.Result {
		time.Sleep(10 * time.Second)
		return check.Result{Status: check.OK}
	}}
	boom := check.Check{ID: "boom", Title: "exploding check", Run: func(ctx context.Context, e *check.Env) check.Result { panic("kaboom") }}
	quick := check.Check{ID: "quick", Title: "quick", Run: func(ctx context.Context, e *check.Env) check.Result {
		return check.Result{Status: check.OK, Message: "fine"}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := check.Run(ctx, e, []check.Check{slow, boom, quick})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Run took %v with a 200ms deadline", took)
	}
	if ids := []string{res[0].ID, res[1].ID, res[2].ID}; strings.Join(ids, ",") != "slow,boom,quick" {
		t.Errorf("order %v", ids)
	}
	checktest.Expect(t, res[0], check.Warn, "slow check did not finish in time", "NSS_ENTRYPOINT_TIMEOUT")
	checktest.Expect(t, res[1], check.Warn, "kaboom", "report")
	checktest.Expect(t, res[2], check.OK, "fine", "")
}

func TestGPUOutcomeIsShared(t *testing.T) {
	e := checktest.FakeEnv(t)
	checktest.Mk(t, e, checktest.CUDANodes)
	var calls atomic.Int32
	e.GPU = func(context.Context) gpuhelper.Outcome {
		calls.Add(1)
		time.Sleep(20 * time.Millisecond)
		return gpuhelper.Outcome{Report: checktest.Healthy(1)}
	}
	check.Run(context.Background(), e, []check.Check{check.GPU, check.GPU, check.GPU})
	if calls.Load() != 1 {
		t.Errorf("the helper ran %d times for three GPU checks", calls.Load())
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 64 << 20: "64 MiB", 1536 << 20: "1.5 GiB", 128 << 30: "128 GiB"} {
		if got := check.FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestWorkspaceNamedVolume(t *testing.T) {
	info := "22 1 0:50 / / rw - overlay overlay rw\n30 22 8:1 /var/lib/docker/volumes/data/_data /workspace/data rw - ext4 /dev/sda1 rw\n"
	e := checktest.FakeEnv(t)
	checktest.Mk(t, e, map[string]string{"/proc/self/mountinfo": info, "/workspace/data/": ""})
	checktest.Expect(t, checktest.Run(t, check.Workspace, e), check.Warn, `/workspace/data is an empty Docker named volume "data", not a host folder`, `docker run -v "$(pwd)/data:/workspace/data" ...`)
	// A named volume that holds data was meant.
	checktest.Mk(t, e, map[string]string{"/workspace/data/train.csv": "a\n"})
	checktest.Expect(t, checktest.Run(t, check.Workspace, e), check.OK, "has content", "")
	// An empty bind mount is fine beside data in the workspace (an empty
	// one alone is TestWorkspace's "empty bind mount").
	e = checktest.FakeEnv(t)
	checktest.Mk(t, e, map[string]string{"/proc/self/mountinfo": "30 22 8:1 /home/u/data /workspace/data rw - ext4 /dev/sda1 rw\n", "/workspace/data/": "", "/workspace/notes.txt": "x"})
	checktest.Expect(t, checktest.Run(t, check.Workspace, e), check.OK, "has content", "")
}

func TestWorkspaceIgnoresTheWriteProbe(t *testing.T) {
	e := checktest.FakeEnv(t)
	checktest.Mk(t, e, map[string]string{"/workspace/" + check.WriteProbePrefix + "123": ""})
	checktest.Expect(t, checktest.Run(t, check.Workspace, e), check.Warn, "/workspace is empty", "absolute host path")
}

func TestReadSmall(t *testing.T) {
	dir := t.TempDir()
	// Limits that are not a size class too: the buffer's capacity, rounded
	// up by append, must not become the bound (a 4 MiB mount table read
	// 239 bytes more, so a mount past the bound was seen).
	for _, size := range []int{0, 1, 4095, 4096, 4097, 100000, 5 << 20} {
		p := dir + "/f"
		want := strings.Repeat("x", size)
		os.WriteFile(p, []byte(want), 0o644)
		for _, limit := range []int{1, 4096, 4097, 10000, 1 << 20, 3<<20 + 7, 4 << 20} {
			got, err := check.ReadSmall(p, limit)
			if err != nil {
				t.Fatal(err)
			}
			if exp := want[:min(size, limit)]; string(got) != exp {
				t.Errorf("size %d limit %d: read %d bytes, want %d", size, limit, len(got), len(exp))
			}
		}
	}
	if _, err := check.ReadSmall(dir+"/missing", 10); err == nil {
		t.Error("no error for a missing file")
	}
}

func TestFormatBytesRounding(t *testing.T) {
	for n, want := range map[uint64]string{
		1 << 30: "1 GiB", 1<<30 + 1<<29: "1.5 GiB", 143771 << 20: "140.4 GiB", 137438953472: "128 GiB",
		1<<30 - 1: "1 GiB", 1<<30 + 1<<27: "1.1 GiB", 1<<30 + 3<<27: "1.4 GiB", ^uint64(0): "16 EiB", 1<<60 + 1<<59: "1.5 EiB",
	} {
		if got := check.FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestRunInline(t *testing.T) {
	e := checktest.FakeEnv(t)
	var order []string
	mark := func(id string, st check.Status) check.Check {
		return check.Check{ID: id, Title: id, Run: func(ctx context.Context, e *check.Env) check.Result {
			order = append(order, id)
			return check.Result{Status: st, Message: id + " ran"}
		}}
	}
	boom := check.Check{ID: "boom", Title: "exploding check", Run: func(ctx context.Context, e *check.Env) check.Result { panic("kaboom") }}
	res := check.RunInline(context.Background(), e, []check.Check{mark("a", check.OK), boom, mark("b", check.Warn)}, func([]check.Result) {
		t.Error("overdue called without a deadline")
	})
	if strings.Join(order, ",") != "a,b" || len(res) != 3 {
		t.Fatalf("order %v, results %v", order, res)
	}
	checktest.Expect(t, res[0], check.OK, "a ran", "")
	checktest.Expect(t, res[1], check.Warn, "kaboom", "report")
	if res[2].Status != check.Warn || res[2].ID != "b" {
		t.Errorf("third result %+v", res[2])
	}
}

func TestRunInlineHandsOverWhenACheckHangs(t *testing.T) {
	e := checktest.FakeEnv(t)
	quick := check.Check{ID: "quick", Title: "quick", Run: func(ctx context.Context, e *check.Env) check.Result {
		return check.Result{Status: check.OK, Message: "fine"}
	}}
	hang := check.Check{ID: "hang", Title: "hanging check", Doing: "stat on a dead mount",
		Run: func(ctx context.Context, e *check.Env) check.Result { time.Sleep(time.Hour); return check.Result{} }}
	later := check.Check{ID: "later", Title: "later check", Run: func(ctx context.Context, e *check.Env) check.Result {
		t.Error("a check after the hung one ran")
		return check.Result{}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	got := make(chan []check.Result, 1)
	returned := make(chan struct{})
	start := time.Now()
	go func() {
		check.RunInline(ctx, e, []check.Check{quick, hang, later}, func(partial []check.Result) { got <- partial })
		close(returned)
	}()
	select {
	case partial := <-got:
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("handed over after %v with a 200ms deadline", took)
		}
		checktest.Expect(t, partial[0], check.OK, "fine", "")
		checktest.Expect(t, partial[1], check.Warn, "hanging check did not finish in time (hanging check: stat on a dead mount)", "NSS_ENTRYPOINT_TIMEOUT")
		// Never started: said once, without a second copy of the hint.
		checktest.Expect(t, partial[2], check.Warn, "not checked, the deadline came first: later check", "waited behind the check above")
	case <-time.After(5 * time.Second):
		t.Fatal("overdue was never called")
	}
	select {
	case <-returned:
		t.Error("RunInline returned after handing over")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestRunInlinePrefersACheckOwnTimeOut(t *testing.T) {
	e := checktest.FakeEnv(t)
	polite := check.Check{ID: "polite", Title: "polite", Run: func(ctx context.Context, e *check.Env) check.Result {
		<-ctx.Done()
		return check.Result{Status: check.Warn, Message: "gave up at the deadline", Hint: "x"}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := check.RunInline(ctx, e, []check.Check{polite}, func([]check.Result) { t.Error("overdue called for a check that honours ctx") })
	checktest.Expect(t, res[0], check.Warn, "gave up at the deadline", "x")
	time.Sleep(2 * check.OverdueGrace) // the watchdog, if it fired, would have called overdue by now
}

// A deadline centuries away must not wrap around the watchdog's grace
// into a past time: the checks finish and overdue is never called.
func TestRunInlineWithADeadlineCenturiesAway(t *testing.T) {
	e := checktest.FakeEnv(t)
	slow := check.Check{ID: "slow", Title: "slow", Run: func(ctx context.Context, e *check.Env) check.Result {
		time.Sleep(2 * check.OverdueGrace)
		return check.Result{Status: check.OK, Message: "done"}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), math.MaxInt64)
	defer cancel()
	returned, overdue := make(chan []check.Result, 1), make(chan bool, 1)
	go func() {
		returned <- check.RunInline(ctx, e, []check.Check{slow}, func([]check.Result) {
			overdue <- true
			select {} // overdue must not return
		})
	}()
	select {
	case res := <-returned:
		checktest.Expect(t, res[0], check.OK, "done", "")
	case <-overdue:
		t.Error("overdue called with the deadline centuries away")
	case <-time.After(5 * time.Second):
		t.Error("RunInline did not return")
	}
}

func TestStartGPU(t *testing.T) {
	e := checktest.FakeEnv(t)
	var calls atomic.Int32
	e.GPU = func(context.Context) gpuhelper.Outcome {
		calls.Add(1)
		return gpuhelper.Outcome{Report: checktest.Healthy(1)}
	}
	e.StartGPU(context.Background())
	time.Sleep(50 * time.Millisecond)
	if calls.Load() != 0 {
		t.Fatal("the probe started without a device node")
	}
	// An Env looks its device nodes up once: a new one sees them.
	withNodes := checktest.FakeEnv(t)
	withNodes.GPU = e.GPU
	checktest.Mk(t, withNodes, checktest.CUDANodes)
	withNodes.StartGPU(context.Background())
	r := checktest.Run(t, check.GPU, withNodes)
	checktest.Expect(t, r, check.OK, "1 GPU: NVIDIA H200", "")
	if calls.Load() != 1 {
		t.Errorf("the probe ran %d times, want once (started early, shared with the check)", calls.Load())
	}
}

// A probe that could not start for want of descriptors, processes or memory
// gets a fix in the flags of the runtime the container runs under, not
// Docker's everywhere.
func TestScarcityHintsSpeakTheRuntime(t *testing.T) {
	runtimes := []struct {
		name  string
		env   []string
		files map[string]string
		want  map[gpuhelper.Failure]string
	}{
		{"docker", nil, map[string]string{"/.dockerenv": ""}, map[gpuhelper.Failure]string{
			gpuhelper.NoDescriptors: "raise the open-file limit: docker run --ulimit nofile=65535:65535 ...",
			gpuhelper.NoProcesses:   "raise the process limit: docker run --pids-limit=-1 --ulimit nproc=65535 ...",
			gpuhelper.NoMemory:      "give the container more memory: docker run --memory=32g ..., or lower what else runs in it",
		}},
		{"podman", []string{"container=podman"}, map[string]string{"/run/.containerenv": ""}, map[gpuhelper.Failure]string{
			gpuhelper.NoDescriptors: "podman run --ulimit nofile=65535:65535 ...",
			gpuhelper.NoProcesses:   "podman run --pids-limit=-1",
			gpuhelper.NoMemory:      "podman run --memory=32g ...",
		}},
		{"kubernetes", []string{"KUBERNETES_SERVICE_HOST=10.0.0.1"}, nil, map[gpuhelper.Failure]string{
			gpuhelper.NoDescriptors: "LimitNOFILE in the containerd or CRI-O systemd unit",
			gpuhelper.NoProcesses:   "podPidsLimit",
			gpuhelper.NoMemory:      "resources.limits.memory",
		}},
		{"slurm", []string{"SLURM_JOB_ID=42"}, nil, map[gpuhelper.Failure]string{
			gpuhelper.NoDescriptors: "raise the open-file limit for the job: ulimit -n 65535 before srun",
			gpuhelper.NoProcesses:   "raise the process limit for the job: ulimit -u 65535 before srun",
			gpuhelper.NoMemory:      "give the job more memory: srun --mem=32G ...",
		}},
		{"apptainer", nil, map[string]string{"/.singularity.d/": ""}, map[gpuhelper.Failure]string{
			gpuhelper.NoDescriptors: "ulimit -n 65535, then apptainer run ...",
			gpuhelper.NoProcesses:   "ulimit -u 65535, then apptainer run ...",
			gpuhelper.NoMemory:      "free memory on the node, or lower what else runs in the job",
		}},
		{"containerd", nil, map[string]string{"/proc/self/mountinfo": ctrMountinfo}, map[gpuhelper.Failure]string{
			gpuhelper.NoDescriptors: "nerdctl run --ulimit nofile=65535:65535",
			gpuhelper.NoProcesses:   "nerdctl run --pids-limit=-1",
			gpuhelper.NoMemory:      "give the container more memory: ctr run --memory-limit 34359738368 ...",
		}},
	}
	for _, rt := range runtimes {
		// A probe that started but got no thread: the same limits, the
		// same fix.
		rt.want[gpuhelper.NoThreads] = rt.want[gpuhelper.NoProcesses]
		// One whose thread's stack could not be mapped: the limits first,
		// then the runtime's memory fix.
		rt.want[gpuhelper.ThreadMemory] = "drop ulimit -v or set it far higher"
		rt.want[gpuhelper.ThreadMemory+"/runtime"] = rt.want[gpuhelper.NoMemory]
		// One whose Go runtime could not reserve its heap: the same.
		rt.want[gpuhelper.RuntimeMemory] = "drop ulimit -v or set it far higher"
		rt.want[gpuhelper.RuntimeMemory+"/runtime"] = rt.want[gpuhelper.NoMemory]
		for failure, want := range rt.want {
			t.Run(rt.name+"/"+string(failure), func(t *testing.T) {
				e := checktest.FakeEnv(t, rt.env...)
				checktest.Mk(t, e, checktest.CUDANodes)
				checktest.Mk(t, e, rt.files)
				failure := gpuhelper.Failure(strings.TrimSuffix(string(failure), "/runtime"))
				e.GPU = func(context.Context) gpuhelper.Outcome { return gpuhelper.Outcome{Failure: failure, Detail: "x"} }
				r := checktest.Run(t, check.GPU, e)
				if !strings.Contains(r.Hint, want) {
					t.Errorf("hint %q, want %q", r.Hint, want)
				}
				if rt.name != "docker" && strings.Contains(r.Hint, "docker run") {
					t.Errorf("hint %q speaks Docker under %s", r.Hint, rt.name)
				}
				if strings.Count(r.Hint, "raise") > 1 || strings.Count(r.Hint, "lower what else") > 1 {
					t.Errorf("hint %q says a thing twice", r.Hint)
				}
			})
		}
	}
}

// A probe that ended itself at its budget (its caller stopped waiting,
// which happens where both were stopped meanwhile) is said to be that, not
// a probe that "exited without a report".
func TestGPUProbeThatEndedItselfAtItsBudget(t *testing.T) {
	e := checktest.FakeEnv(t)
	checktest.Mk(t, e, checktest.CUDANodes)
	e.GPU = func(context.Context) gpuhelper.Outcome {
		return gpuhelper.Outcome{Failure: gpuhelper.BudgetSpent, Detail: "it ran out of its time and ended itself without a report"}
	}
	r := checktest.Run(t, check.GPU, e)
	if r.Status != check.Warn || !strings.Contains(r.Message, "paused") || !strings.Contains(r.Message, "ended itself") {
		t.Errorf("%s: %q", r.Status, r.Message)
	}
}
