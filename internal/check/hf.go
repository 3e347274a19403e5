package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/nvidia-nemo/nss-entrypoint/internal/textpath"
	"golang.org/x/sys/unix"
)

// SuggestedHFHome is where the hints suggest mounting the Hugging Face cache.
const SuggestedHFHome = "/workspace/.hf_cache"

// HFCache checks HF_HOME: set, an existing directory, writable. HF_HOME is
// expanded as huggingface_hub expands it ("~" and $VARIABLES). An HF_HOME
// that is set but empty is not unset: huggingface_hub keeps its cache in
// the working directory then; nor is an empty XDG_CACHE_HOME, which makes
// the cache the relative folder "huggingface" (see HFHome).
var HFCache = Check{
	ID: "hf-cache", Title: "Hugging Face cache",
	Paths: func(e *Env) []string {
		// Only an absolute HF_HOME is looked at.
		if home := Expand(e, e.Get("HF_HOME")); strings.HasPrefix(home, "/") {
			return []string{home}
		}
		return nil
	},
	Run: func(ctx context.Context, e *Env) Result {
		mount := func() string {
			return e.Runtime().MountHint(`$HOME/.cache/huggingface`, SuggestedHFHome, "HF_HOME="+SuggestedHFHome)
		}
		raw, set := e.Getenv("HF_HOME")
		if !set {
			if r, ok := relativeXDGCache(e, mount()); ok {
				return r
			}
			return Result{Status: Warn,
				Message: "HF_HOME is not set: models are downloaded inside the container and lost when it exits",
				Hint:    "mount a cache and point HF_HOME at it: " + mount()}
		}
		home := Expand(e, raw)
		if home == "" {
			what := "HF_HOME is set but empty"
			if raw != "" {
				what = "HF_HOME=" + raw + " is empty once expanded"
			}
			where := "the working directory itself"
			if wd, ok := e.InWorkDir(""); ok {
				where += " (" + wd + ")"
			}
			return Result{Status: Warn, Data: map[string]any{"path": home},
				Message: what + ": huggingface_hub then keeps its cache in " + where + ", not in a folder of its own",
				Hint:    "point HF_HOME at a mounted folder (HF_HOME= with nothing after the = sets it empty, which is not unset): " + mount()}
		}
		shown := "HF_HOME=" + raw
		if home != raw {
			shown += " (" + home + ")"
		}
		rt := e.Runtime
		data := map[string]any{"path": home}
		if !strings.HasPrefix(home, "/") {
			return Result{Status: Warn, Data: data,
				Message: shown + " is a relative path: the cache then depends on the working directory",
				Hint:    "set HF_HOME to an absolute path of a mounted folder: " + mount()}
		}
		fi, err := os.Stat(e.Path(home))
		switch {
		case errors.Is(err, unix.ENOTDIR):
			return Result{Status: Warn, Data: data,
				Message: notADirectory(e, shown, home),
				Hint:    "point HF_HOME at a mounted directory: " + mount()}
		case errors.Is(err, os.ErrNotExist):
			return Result{Status: Warn, Data: data,
				Message: shown + " does not exist: the cache is not mounted",
				Hint:    "mount the cache there: " + rt().MountHint(`$HOME/.cache/huggingface`, home)}
		case err != nil:
			msg, hint := PathError(e, shown, UnwrapPath(err), false)
			if hint == "" {
				hint = "mount the cache there: " + rt().MountHint(`$HOME/.cache/huggingface`, home)
			}
			return Result{Status: Warn, Data: data, Message: msg, Hint: hint}
		case !fi.IsDir():
			return Result{Status: Warn, Data: data,
				Message: shown + " is not a directory",
				Hint:    "point HF_HOME at a mounted directory: " + mount()}
		}
		if err := e.CanAccess(e.Path(home), unix.W_OK|unix.X_OK); err != nil {
			data["uid"] = e.EffectiveUID()
			msg, hint := PathError(e, shown, err, true)
			return Result{Status: Warn, Data: data, Message: msg, Hint: hint}
		}
		return Result{Status: OK, Data: data, Message: shown + " is a writable directory"}
	},
}

// relativeXDGCache is HFCache's result where HF_HOME is unset and
// XDG_CACHE_HOME, set, makes the cache a relative folder: "huggingface"
// when it is empty, "x/huggingface" when it is "x". ok is false otherwise.
func relativeXDGCache(e *Env, mount string) (r Result, ok bool) {
	x, set := e.Getenv("XDG_CACHE_HOME")
	home := HFHome(e)
	if !set || strings.HasPrefix(home, "/") {
		return Result{}, false
	}
	what := "XDG_CACHE_HOME is set but empty"
	if x != "" {
		what = "XDG_CACHE_HOME=" + x + " is a relative path"
	}
	where := "the working directory"
	if abs, ok := e.InWorkDir(home); ok {
		where += " (" + abs + ")"
	}
	return Result{Status: Warn, Data: map[string]any{"path": home},
		Message: "HF_HOME is not set and " + what + ": huggingface_hub then keeps its cache in the relative folder " + home + " of " + where,
		Hint:    "point HF_HOME at a mounted folder: " + mount}, true
}

// PathError words an error met on a path: a read-only filesystem, a loop of
// symbolic links, a name too long, a disconnected FUSE mount each have
// their own message and fix; permission is about the user the container
// runs as. what names the path ("HF_HOME=/x"); write says whether writing
// was wanted. An empty hint means the caller's usual fix applies.
func PathError(e *Env, what string, err error, write bool) (msg, hint string) {
	switch {
	case errors.Is(err, unix.EROFS):
		return what + " is on a read-only filesystem", "mount it read-write (drop :ro, or readOnly: false in Kubernetes)"
	case errors.Is(err, unix.ELOOP):
		return what + " is a loop of symbolic links", "point it at a real directory: check the links with ls -l along the path"
	case errors.Is(err, unix.ENAMETOOLONG):
		return what + " is too long a path for this system", "use a shorter path"
	case errors.Is(err, unix.ENOTCONN):
		return what + " is on a disconnected FUSE mount (its daemon has stopped)", "restart the container after fixing the mount (gcsfuse, s3fs, a CSI driver) on the host"
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		verb := "readable"
		if write {
			verb = "writable"
		}
		return fmt.Sprintf("%s is not %s by uid %d: %v", what, verb, e.EffectiveUID(), err),
			"run the container as the owner of the folder: " + e.Runtime().UserHint(e.IDs())
	}
	return fmt.Sprintf("%s cannot be inspected: %v", what, err), ""
}

// Expand expands a path as huggingface_hub expands HF_HOME (Python's
// os.path.expandvars(os.path.expanduser(p))): a leading "~" is $HOME (or,
// when HOME is unset, the home of the effective user in /etc/passwd), a
// leading "~name" is name's home; then $NAME and ${NAME} are replaced by
// their values, and names that are unset are left as they are.
func Expand(e *Env, p string) string {
	if strings.HasPrefix(p, "~") {
		i := strings.IndexByte(p, '/')
		if i < 0 {
			i = len(p)
		}
		user, home, found := p[1:i], "", false
		if user != "" {
			home = passwdHome(e, user, -1)
			found = home != ""
		} else if v, set := e.Getenv("HOME"); set {
			home, found = v, true
		} else {
			home = passwdHome(e, "", e.EffectiveUID())
			found = home != ""
		}
		if found {
			if p = strings.TrimRight(home, "/") + p[i:]; p == "" {
				p = "/"
			}
		}
	}
	if !strings.Contains(p, "$") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); {
		if p[i] != '$' || i+1 >= len(p) {
			b.WriteByte(p[i])
			i++
			continue
		}
		name, end := "", i+1
		if p[i+1] == '{' {
			j := strings.IndexByte(p[i+2:], '}')
			if j < 0 {
				b.WriteByte(p[i])
				i++
				continue
			}
			name, end = p[i+2:i+2+j], i+3+j
		} else {
			for end < len(p) && (p[end] == '_' || 'a' <= p[end] && p[end] <= 'z' || 'A' <= p[end] && p[end] <= 'Z' || '0' <= p[end] && p[end] <= '9') {
				end++
			}
			name = p[i+1 : end]
		}
		if v, set := e.Getenv(name); set && name != "" {
			b.WriteString(v)
		} else {
			b.WriteString(p[i:end])
		}
		i = end
	}
	return b.String()
}

// passwdHome finds a home directory in /etc/passwd, by user name or, with
// name "", by uid.
func passwdHome(e *Env, name string, uid int) string {
	b, err := ReadSmall(e.Path("/etc/passwd"), 1<<20)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 7 {
			continue
		}
		if name != "" && f[0] == name || name == "" && f[2] == strconv.Itoa(uid) {
			return f[5]
		}
	}
	return ""
}

// TokenSource says where a Hugging Face token was found; the value itself is
// never kept.
type TokenSource struct {
	// Source is "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN" or "file".
	Source string
	// Path is the token file as read: Given, joined onto the working
	// directory when relative; "" for a token from the environment, or
	// where Given is relative and the working directory is not known.
	Path string
	// Given is the token file as huggingface_hub names it, before a
	// relative one is read from the working directory: "" for an
	// HF_TOKEN_PATH that is set but empty. Set when no token came from
	// the environment.
	Given string
	// Length is the token's length after trimming surrounding white space.
	Length int
	// Whitespace is true when the token has white space inside it.
	Whitespace bool
	// Wrapped says what surrounds a token that huggingface_hub would send
	// as part of it ("quotes", "a byte-order mark", "HF_TOKEN="); "" when
	// nothing does.
	Wrapped string
	// Searched lists the places looked at, in order.
	Searched []string
	// Unusable says why a token file that exists holds no usable token
	// ("holds only white space", "holds NUL bytes ..."); "" otherwise.
	Unusable string
	// ReadErr is why the token file could not be read, when it is there or
	// may be (not for a file that does not exist).
	ReadErr error
}

// FindToken looks for a Hugging Face token the way huggingface_hub does:
// HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the token file at HF_TOKEN_PATH, else
// $HF_HOME/token, else $XDG_CACHE_HOME/huggingface/token, else
// $HOME/.cache/huggingface/token (tokenPath), a relative one read from the
// working directory. ok is false when none was found.
func FindToken(e *Env) (ts TokenSource, ok bool) {
	ts.Searched = append(ts.Searched, "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
	if name, v := envToken(e); v != "" {
		ts.Source, ts.Length, ts.Whitespace, ts.Wrapped = name, len(v), strings.ContainsAny(v, " \t"), wrapped(v)
		return ts, true
	}
	ts.Given = tokenPath(e)
	file, known := e.InWorkDir(ts.Given)
	ts.Searched = append(ts.Searched, ShowPath(ts.Given, file))
	if !known {
		return ts, false
	}
	ts.Path = file
	b, err := ReadSmall(e.Path(file), 4096)
	if err != nil {
		if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
			ts.ReadErr = err
		}
		return ts, false
	}
	v := cleanToken(string(b))
	clear(b)
	switch {
	case v == "":
		ts.Unusable = "holds only white space"
		return ts, false
	case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != ' ' && r != '\t' && r != '\n' && r != '\r' || r == 0x7f }):
		ts.Unusable = "holds NUL bytes or other control characters"
		return ts, false
	}
	ts.Source, ts.Length, ts.Whitespace, ts.Wrapped = "file", len(v), strings.ContainsAny(v, " \t"), wrapped(v)
	return ts, true
}

// wrapped says, as a phrase that follows "is", what surrounds a token that is not part of it, which
// huggingface_hub would send all the same (it only trims blanks): quotes
// (docker run --env-file and Compose keep them), a byte-order mark (a
// file saved by a Windows editor), or an assignment ("HF_TOKEN=hf_..."
// in a token file); "" for none.
func wrapped(v string) string {
	switch {
	case strings.HasPrefix(v, "\ufeff"):
		return "preceded by a byte-order mark"
	case len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\''):
		return "wrapped in quotes"
	case strings.HasPrefix(v, "HF_TOKEN=") || strings.HasPrefix(v, "HUGGING_FACE_HUB_TOKEN="):
		return "preceded by an assignment (" + v[:strings.IndexByte(v, '=')+1] + ")"
	}
	return ""
}

// envToken is the token huggingface_hub takes from the environment:
// HF_TOKEN when it is not empty, else HUGGING_FACE_HUB_TOKEN, cleaned
// (cleanToken); "" when that leaves nothing, and then the hub reads the
// token file, even where HF_TOKEN was only blanks and
// HUGGING_FACE_HUB_TOKEN holds a token.
func envToken(e *Env) (name, token string) {
	name = "HF_TOKEN"
	v := e.Get(name)
	if v == "" {
		name = "HUGGING_FACE_HUB_TOKEN"
		v = e.Get(name)
	}
	return name, cleanToken(v)
}

// cleanToken is a token as huggingface_hub cleans it: every CR and LF
// removed, wherever they are, and blanks trimmed at both ends.
func cleanToken(v string) string {
	if strings.ContainsAny(v, "\r\n") {
		// A Replacer costs more to build than the checks' other work
		// (about 5 us): only where there is something to remove.
		b := make([]byte, 0, len(v))
		for i := 0; i < len(v); i++ {
			if v[i] != '\r' && v[i] != '\n' {
				b = append(b, v[i])
			}
		}
		v = string(b)
	}
	return strings.TrimSpace(v)
}

// tokenPath is the token file huggingface_hub reads, as its constants
// derive it: HF_TOKEN_PATH when it is set, even to "", else HFHome's
// "token"; then expanded (Expand), the second path a second time, as
// huggingface_hub expands HF_HOME and then the path built on it. It may be
// relative (read from the working directory) or "" (pathlib reads ".").
func tokenPath(e *Env) string {
	p, set := e.Getenv("HF_TOKEN_PATH")
	if !set {
		p = textpath.Join(HFHome(e), "token")
	}
	return Expand(e, p)
}

// HFHome is the Hugging Face home as huggingface_hub's constants derive
// it: HF_HOME when it is set, even to "" (the cache is then the working
// directory itself), else $XDG_CACHE_HOME/huggingface when XDG_CACHE_HOME
// is set, even to "" (then the relative "huggingface"), else
// ~/.cache/huggingface; the result expanded (Expand). A "~" with no home
// (HOME unset and no passwd entry) stays, as in Python, a relative path.
// A relative home is read from the working directory (Env.InWorkDir).
func HFHome(e *Env) string {
	h, set := e.Getenv("HF_HOME")
	if !set {
		cache, set := e.Getenv("XDG_CACHE_HOME")
		if !set {
			// expanduser("~"): HOME, or where it is unset, the
			// passwd entry of the user.
			cache = textpath.Join(Expand(e, "~"), ".cache")
		}
		h = textpath.Join(cache, "huggingface")
	}
	return Expand(e, h)
}

// ReadSmall reads at most limit bytes of a file, with raw system calls so
// that the runtime's network poller is not started on the start path. The
// buffer grows as needed: a large limit costs nothing for a small file.
// Measured faster than os.ReadFile even warm (31-41 µs against 41-56 µs for
// /proc/self/mountinfo, docs/design.md), before the poller's own start-up.
// It is bounded whatever the file is: a device without end (/dev/zero)
// or a huge sparse file yields limit bytes; a named pipe or a socket is
// refused (ErrNotRegular) rather than waited on; a directory is EISDIR.
func ReadSmall(name string, limit int) ([]byte, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO, unix.S_IFSOCK:
		return nil, ErrNotRegular
	case unix.S_IFDIR:
		return nil, unix.EISDIR
	}
	buf := make([]byte, 0, min(limit, 4096))
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(cap(buf), limit-len(buf)))...)[:len(buf)]
		}
		// Up to limit, not to the capacity append chose (rounded up to a
		// size class, it can be larger).
		m, err := unix.Read(fd, buf[len(buf):min(cap(buf), limit)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		buf = buf[:len(buf)+m]
	}
	return buf, nil
}

// ErrNotRegular is ReadSmall's error for a named pipe or a socket.
var ErrNotRegular = errors.New("not a regular file (a named pipe or a socket)")

// HFToken checks that a Hugging Face token is available. It never shows the
// token.
var HFToken = Check{
	ID: "hf-token", Title: "Hugging Face token",
	Paths: func(e *Env) []string {
		if _, v := envToken(e); v != "" {
			return nil
		}
		if p, ok := e.InWorkDir(tokenPath(e)); ok {
			return []string{p}
		}
		return nil
	},
	Run: func(ctx context.Context, e *Env) Result {
		ts, ok := FindToken(e)
		data := map[string]any{"searched": ts.Searched}
		if !ok && ts.Given == "" && (ts.ReadErr != nil || ts.Path == "") {
			return emptyTokenPath(e, ts, data)
		}
		if !ok && ts.ReadErr != nil {
			data["path"], data["error"] = ts.Path, ts.ReadErr.Error()
			msg, hint := PathError(e, "the Hugging Face token file "+ts.Path, ts.ReadErr, false)
			passIn := "pass the token in: " + e.Runtime().EnvHint("HF_TOKEN")
			if errors.Is(ts.ReadErr, unix.EACCES) || errors.Is(ts.ReadErr, unix.EPERM) || errors.Is(ts.ReadErr, unix.EROFS) {
				hint += "; or " + passIn
			} else {
				hint = "point HF_TOKEN_PATH at a readable token file, or " + passIn
			}
			return Result{Status: Warn, Data: data, Message: msg + "; gated models will fail to download", Hint: hint}
		}
		if !ok && ts.Unusable != "" {
			data["path"] = ts.Path
			return Result{Status: Warn, Data: data,
				Message: "the Hugging Face token file " + ts.Path + " " + ts.Unusable + ": it is not a token, and gated models will fail to download",
				Hint:    "write the token again (hf auth login), or pass it in: " + e.Runtime().EnvHint("HF_TOKEN")}
		}
		if !ok {
			return Result{Status: Warn, Data: data,
				Message: "no Hugging Face token: gated models (Llama, Mistral, Gemma, ...) will fail to download",
				Hint: "export HF_TOKEN on the host and pass it in: " + e.Runtime().EnvHint("HF_TOKEN") +
					"; or mount a Hugging Face cache that holds a token (hf auth login) and set HF_HOME to it"}
		}
		data["source"], data["length"] = ts.Source, ts.Length
		where := ts.Source
		if ts.Source == "file" {
			data["path"] = ts.Path
			where = ts.Path
		}
		if ts.Wrapped != "" {
			data["wrapped"] = ts.Wrapped
			hint := "set " + where + " again, the token alone (docker run --env-file and Compose keep quotes: leave them out there)"
			switch {
			case strings.Contains(ts.Wrapped, "byte-order mark") && ts.Source == "file":
				hint = "save " + where + " again as UTF-8 without a byte-order mark (not \"UTF-8 with BOM\"), the token alone, or pass it in: " + e.Runtime().EnvHint("HF_TOKEN")
			case strings.Contains(ts.Wrapped, "byte-order mark"):
				hint = "set " + where + " again, the token alone, from text without a byte-order mark (a file saved as \"UTF-8 with BOM\" starts with one)"
			case ts.Source == "file":
				hint = "write the token alone in " + where + " (hf auth login does), or pass it in: " + e.Runtime().EnvHint("HF_TOKEN")
			}
			return Result{Status: Warn, Data: data,
				Message: "the Hugging Face token from " + where + " is " + ts.Wrapped + ", which huggingface_hub sends as part of it: gated models will fail to download",
				Hint:    hint}
		}
		if ts.Whitespace {
			return Result{Status: Warn, Data: data,
				Message: fmt.Sprintf("the Hugging Face token from %s has white space inside it", where),
				Hint:    fmt.Sprintf("set the token in %s again, without spaces or line breaks (HF_TOKEN takes precedence over files)", where)}
		}
		return Result{Status: OK, Data: data, Message: "token found in " + where + " (" + strconv.Itoa(ts.Length) + " chars)"}
	},
}

// emptyTokenPath is HFToken's result for an HF_TOKEN_PATH that is empty,
// set so or expanded to nothing: huggingface_hub reads Path("") as ".", the
// working directory, and only a missing file is "no token" to it; reading
// a directory raises IsADirectoryError where it looks for a token.
func emptyTokenPath(e *Env, ts TokenSource, data map[string]any) Result {
	what := "HF_TOKEN_PATH is set but empty"
	if raw := e.Get("HF_TOKEN_PATH"); raw != "" {
		what = "HF_TOKEN_PATH=" + raw + " is empty once expanded"
	}
	wd, why := "the working directory", "it is a directory"
	if ts.ReadErr != nil {
		data["path"], data["error"] = ts.Path, ts.ReadErr.Error()
		wd, why = "the working directory "+ts.Path, UnwrapPath(ts.ReadErr).Error()
	}
	return Result{Status: Warn, Data: data,
		Message: what + ": huggingface_hub then reads " + wd + " as its token file, which fails (" + why + "), and it raises that error where it looks for a token, downloads included",
		Hint:    "unset HF_TOKEN_PATH or point it at a token file (HF_TOKEN_PATH= with nothing after the = sets it empty, which is not unset), or pass the token in: " + e.Runtime().EnvHint("HF_TOKEN")}
}
