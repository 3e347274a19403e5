package checks

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
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

// EnvFileKeys returns the variable names a .env file defines, never values.
func EnvFileKeys(b []byte) []string {
	var keys []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, _, ok := strings.Cut(line, "=")
		if ok && k != "" && !strings.ContainsAny(k, " \t") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// Config checks NSS_CONFIG, the values of the variables with a known set of
// values, and lists the keys of /workspace/.env.
var Config = check.Check{
	ID: "config", Title: "configuration", Timeout: defaultCheckTimeout,
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
		if b, err := os.ReadFile(e.Path(path.Join(ws, ".env"))); err == nil {
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
