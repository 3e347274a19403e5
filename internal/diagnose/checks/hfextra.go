package checks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/nvidia-nemo/nss-entrypoint/internal/check"
	"github.com/nvidia-nemo/nss-entrypoint/internal/textpath"
)

// truthy reports whether a flag variable is on, as huggingface_hub reads them.
func truthy(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

// hubCache is the Hugging Face hub cache directory huggingface_hub would
// use, as its constants derive it: HF_HUB_CACHE when it is set, even to
// "", else HUGGINGFACE_HUB_CACHE when set, else check.HFHome's "hub"; then
// expanded (check.Expand). It may be relative, or "" (the working
// directory itself).
func hubCache(e *check.Env) string {
	c, set := e.Getenv("HF_HUB_CACHE")
	if !set {
		c, set = e.Getenv("HUGGINGFACE_HUB_CACHE")
	}
	if !set {
		c = textpath.Join(check.HFHome(e), "hub")
	}
	return check.Expand(e, c)
}

// HFOffline fails when offline mode is on but the hub cache holds nothing:
// every model load would fail.
var HFOffline = check.Check{
	ID: "hf-offline", Title: "Hugging Face offline mode", Timeout: defaultCheckTimeout,
	Paths: func(e *check.Env) []string { return readPaths(e, hubCache(e)) },
	Run: func(ctx context.Context, e *check.Env) check.Result {
		cache := hubCache(e)
		abs, known := e.InWorkDir(cache)
		shown := check.ShowPath(cache, abs)
		data := map[string]any{"hub_cache": cache}
		var on []string
		for _, v := range []string{"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} {
			if truthy(e.Get(v)) {
				on = append(on, v)
			}
		}
		if len(on) == 0 {
			return check.Result{Status: check.OK, Data: data, Message: "online; hub cache " + shown}
		}
		data["offline_by"] = on
		// A relative cache with no known working directory holds
		// nothing that can be counted.
		var entries []os.DirEntry
		var err error
		if known {
			entries, err = readDir(e.Path(abs))
		}
		models := 0
		for _, d := range entries {
			if strings.HasPrefix(d.Name(), "models--") {
				models++
			}
		}
		data["cached_models"] = models
		if err != nil || models == 0 {
			return check.Result{Status: check.Fail, Data: data,
				Message: strings.Join(on, " and ") + " set, but the hub cache " + shown + " holds no models: every download will fail",
				Hint:    "mount a cache that holds the models (" + e.Runtime().MountHint(`$HOME/.cache/huggingface`, check.SuggestedHFHome, "HF_HOME="+check.SuggestedHFHome) + "), or unset " + strings.Join(on, " and ")}
		}
		return check.Result{Status: check.OK, Data: data, Message: strings.Join(on, " and ") + " set; the hub cache " + shown + " holds " + strconv.Itoa(models) + " models"}
	},
}

// gatedOrg reports the organisations whose models need an accepted licence
// and a token.
func gatedOrg(org string) bool {
	switch org {
	case "meta-llama", "mistralai", "google", "CohereForAI", "CohereLabs":
		return true
	}
	return false
}

// modelKeys are the config keys that name a Hugging Face model.
var modelKeys = []string{"model", "model_name", "model_name_or_path", "pretrained_model_name_or_path", "base_model"}

// ConfigModels returns the Hugging Face model ids ("org/name") that a YAML
// or JSON config names under one of modelKeys, at any depth, in document
// order. A config that does not parse is an error.
func ConfigModels(config []byte) ([]string, error) {
	if err := checkExpansion(config); err != nil {
		return nil, err
	}
	var doc any
	if err := yaml.Unmarshal(config, &doc); err != nil {
		return nil, fmt.Errorf("parse the config: %w", err)
	}
	var ids []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if s, ok := x[k].(string); ok && slices.Contains(modelKeys, k) && hubID(s) {
					ids = append(ids, s)
					continue
				}
				walk(x[k])
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	return ids, nil
}

// hubID reports whether s has the shape of a hub model id, "org/name".
func hubID(s string) bool {
	org, name, ok := strings.Cut(s, "/")
	return ok && org != "" && name != "" && !strings.Contains(name, "/") && validID(org) && validID(name)
}

// validID reports whether s is made of the characters a hub id may use.
func validID(s string) bool {
	for _, c := range s {
		if !(c == '-' || c == '_' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return !strings.HasPrefix(s, ".")
}

// HFGated warns when NSS_CONFIG names a model of a gated organisation and no
// token is available.
var HFGated = check.Check{
	ID: "hf-gated-model", Title: "gated model access", Timeout: defaultCheckTimeout,
	Paths: func(e *check.Env) []string { return readPaths(e, e.Get("NSS_CONFIG")) },
	Run: func(ctx context.Context, e *check.Env) check.Result {
		cfg := e.Get("NSS_CONFIG")
		if cfg == "" {
			return check.Result{Status: check.Skip, Message: "NSS_CONFIG is not set"}
		}
		b, err := check.ReadSmall(e.Path(cfg), 256<<10)
		if err != nil {
			return check.Result{Status: check.Skip, Message: "NSS_CONFIG cannot be read (see the config check)"}
		}
		models, err := ConfigModels(b)
		if errors.Is(err, errExpands) {
			return check.Result{Status: check.Warn, Message: "NSS_CONFIG was not read: " + err.Error(),
				Hint: "write the config without YAML aliases (*name), or with fewer of them"}
		}
		if err != nil {
			return check.Result{Status: check.Skip, Message: "NSS_CONFIG is neither YAML nor JSON (see the config check)"}
		}
		data := map[string]any{"models": models}
		var gated []string
		for _, m := range models {
			if gatedOrg(strings.SplitN(m, "/", 2)[0]) {
				gated = append(gated, m)
			}
		}
		if len(gated) == 0 {
			return check.Result{Status: check.OK, Data: data, Message: "no gated model in NSS_CONFIG"}
		}
		if _, ok := check.FindToken(e); ok {
			return check.Result{Status: check.OK, Data: data, Message: "gated model " + strings.Join(gated, ", ") + " with a token available"}
		}
		return check.Result{Status: check.Warn, Data: data,
			Message: "NSS_CONFIG uses the gated model " + strings.Join(gated, ", ") + " but no Hugging Face token is available",
			Hint:    "accept the model's licence on huggingface.co, then pass a token: " + e.Runtime().EnvHint("HF_TOKEN")}
	},
}
