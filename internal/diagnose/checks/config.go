package checks

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/textpath"
)

// knownValues lists the values the image's tools accept for a variable, in
// the order the report checks them.
var knownValues = []struct {
	name   string
	values []string
}{
	{"NSS_LOG_FORMAT", []string{"json", "plain", "text"}},
	{"NSS_LOG_LEVEL", []string{"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}},
	{"VLLM_ATTENTION_BACKEND", []string{"FLASH_ATTN", "FLASHINFER", "TRITON_ATTN", "TORCH_SDPA", "XFORMERS", "FLEX_ATTENTION", "FLASHMLA", "TRITON_MLA", "ROCM_FLASH"}},
	{"WANDB_MODE", []string{"online", "offline", "disabled", "dryrun", "run", "shared"}},
}

// maxEnvFile bounds how much of a .env file is read.
const maxEnvFile = 1 << 20

// EnvFileKeys returns the variable names a .env file defines, never values:
// only from lines that start with NAME= or export NAME=, NAME a shell
// identifier. A quoted value that goes on over several lines (a private
// key) is skipped to its closing quote, an unquoted PEM block to its END
// line and a line that ends in "\" with the next, so that none of their
// lines counts. Where a line may be a value's body rather than a
// definition (NAME= with nothing after it and a mixed-case NAME, as a
// base64 line ending in "=" reads), it is not listed.
func EnvFileKeys(b []byte) []string {
	lines := strings.Split(string(b), "\n")
	var keys []string
	for i := 0; i < len(lines); i++ {
		name, value, ok := strings.Cut(strings.TrimPrefix(lines[i], "export "), "=")
		if !ok || !identifier(name) {
			continue
		}
		value = strings.TrimRight(value, "\r")
		if value != "" || conventional(name) {
			keys = append(keys, name)
		}
		switch {
		case value == "":
		case strings.ContainsRune("\"'`", rune(value[0])):
			quote := value[0]
			for rest := value[1:]; !closes(rest, quote) && i+1 < len(lines); rest = lines[i] {
				i++
			}
		case strings.Contains(value, "-----BEGIN") && !strings.Contains(value, "-----END"):
			for i+1 < len(lines) && !strings.Contains(lines[i], "-----END") {
				i++
			}
		default:
			for strings.HasSuffix(strings.TrimRight(lines[i], "\r"), "\\") && i+1 < len(lines) {
				i++
			}
		}
	}
	sort.Strings(keys)
	return slices.Compact(keys)
}

// conventional reports whether name is written as variable names are
// (UPPER_CASE or lower_case), not as a line of base64.
func conventional(name string) bool {
	return name == strings.ToUpper(name) || name == strings.ToLower(name)
}

// identifier reports whether s is a shell variable name.
func identifier(s string) bool {
	for i, c := range s {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// closes reports whether s holds the quote that closes a value; in double
// quotes a backslash escapes it.
func closes(s string, quote byte) bool {
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quote == '"':
			i++
		case s[i] == quote:
			return true
		}
	}
	return false
}

// Config checks NSS_CONFIG, the values of the variables with a known set of
// values, and lists the keys of /workspace/.env.
var Config = check.Check{
	ID: "config", Title: "configuration", Timeout: defaultCheckTimeout,
	Paths: func(e *check.Env) []string {
		return readPaths(e, e.Get("NSS_CONFIG"), textpath.Join(check.WorkspaceDir(e), ".env"))
	},
	Run: func(ctx context.Context, e *check.Env) check.Result {
		data := map[string]any{}
		var problems, hints, notes []string
		if cfg := e.Get("NSS_CONFIG"); cfg != "" {
			data["nss_config"] = cfg
			if _, err := check.ReadSmall(e.Path(cfg), 1); err != nil {
				problems = append(problems, "NSS_CONFIG="+cfg+" cannot be read: "+check.UnwrapPath(err).Error())
				hints = append(hints, "mount the config file and point NSS_CONFIG at its path inside the container: "+
					e.Runtime().MountHint(`$(pwd)/config.yaml`, "/workspace/config.yaml", "NSS_CONFIG=/workspace/config.yaml"))
			} else {
				notes = append(notes, "NSS_CONFIG readable")
			}
		}
		for _, kv := range knownValues {
			v, set := e.Getenv(kv.name)
			if !set {
				continue
			}
			data[strings.ToLower(kv.name)] = v
			if !slices.ContainsFunc(kv.values, func(k string) bool { return strings.EqualFold(k, v) }) {
				problems = append(problems, kv.name+"="+quote(v)+" is not one of "+strings.Join(kv.values, ", "))
				hints = append(hints, "set "+kv.name+" to one of "+strings.Join(kv.values, ", ")+", or unset it")
			}
		}
		ws := e.Get("NSS_WORKSPACE")
		if ws == "" {
			ws = check.DefaultWorkspace
		}
		if b, err := check.ReadSmall(e.Path(textpath.Join(ws, ".env")), maxEnvFile); err == nil {
			keys := EnvFileKeys(b)
			clear(b)
			data["dotenv_keys"] = keys
			notes = append(notes, ws+"/.env defines "+strings.Join(keys, ", "))
		}
		if len(problems) > 0 {
			return check.Result{Status: check.Warn, Data: data, Message: strings.Join(problems, "; "), Hint: strings.Join(hints, "; ")}
		}
		if len(notes) == 0 {
			notes = append(notes, "no NSS_CONFIG, no .env, no values to validate")
		}
		return check.Result{Status: check.OK, Data: data, Message: strings.Join(notes, "; ")}
	},
}

func quote(s string) string { return `"` + s + `"` }
