package checks

import (
	"bytes"
	"context"
	"fmt"

	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
)

// RuntimeCheck reports the container runtime the hints are phrased for.
var RuntimeCheck = check.Check{
	ID: "runtime", Title: "container runtime", Timeout: defaultCheckTimeout,
	Run: func(ctx context.Context, e *check.Env) check.Result {
		rt := e.Runtime()
		return check.Result{Status: check.OK, Message: rt.Name + " (" + rt.Evidence + ")",
			Data: map[string]any{"name": rt.Name, "evidence": rt.Evidence}}
	},
}

// maxPasswd bounds how much of /etc/passwd is read.
const maxPasswd = 4 << 20

// passwdEntry finds uid in /etc/passwd (moby/sys/user's parser, as gosu
// uses) and returns its name and home.
func passwdEntry(e *check.Env, uid int) (name, home string, ok bool) {
	b, err := check.ReadSmall(e.Path("/etc/passwd"), maxPasswd)
	if err != nil {
		return "", "", false
	}
	users, err := user.ParsePasswdFilter(bytes.NewReader(b), func(u user.User) bool { return u.Uid == uid })
	if err != nil || len(users) == 0 {
		return "", "", false
	}
	return users[0].Name, users[0].Home, true
}

// UserName returns the passwd name of the effective uid, which the report
// redacts as personal.
func UserName(e *check.Env) (string, bool) {
	uid, _ := e.IDs()
	name, _, ok := passwdEntry(e, uid)
	return name, ok
}

// Identity checks who the process runs as: a passwd entry for the uid, and a
// HOME that is set and writable (an unknown --user gets HOME=/).
var Identity = check.Check{
	ID: "identity", Title: "user and HOME", Timeout: defaultCheckTimeout,
	Paths: func(e *check.Env) []string { return readPaths(e, e.Home()) },
	Run: func(ctx context.Context, e *check.Env) check.Result {
		uid, gid := e.IDs()
		data := map[string]any{"uid": uid, "gid": gid}
		name, _, known := passwdEntry(e, uid)
		data["passwd_entry"] = known
		if known {
			data["user"] = name
		}
		home := e.Home()
		data["home"] = home
		who := fmt.Sprintf("uid %d", uid)
		if known {
			who += " (" + name + ")"
		}
		fix := "point the caches at a mounted, writable folder: " +
			e.Runtime().MountHint(`$HOME/.cache/huggingface`, check.SuggestedHFHome, "HF_HOME="+check.SuggestedHFHome)
		switch {
		case home == "":
			return check.Result{Status: check.Warn, Data: data, Message: who + " has no HOME set: tools that write under ~ will fail", Hint: fix}
		case e.CanAccess(e.Path(home), unix.W_OK|unix.X_OK) != nil:
			msg := fmt.Sprintf("%s cannot write its HOME=%s", who, home)
			if !known {
				msg += "; the uid has no passwd entry, as with docker run --user 4242:4242"
			}
			return check.Result{Status: check.Warn, Data: data, Message: msg + ": caches under ~ will fail", Hint: fix}
		case !known:
			return check.Result{Status: check.OK, Data: data, Message: who + " has no passwd entry; HOME=" + home + " is writable"}
		}
		return check.Result{Status: check.OK, Data: data, Message: who + ", HOME=" + home + " is writable"}
	},
}
