// Package containers reads containers/Dockerfile.cuda with BuildKit's own
// parser, so that tests (and the end-to-end stand-in image) take the image's
// contract from the one file that defines it.
package containers

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// DockerfilePath is containers/Dockerfile.cuda in this checkout.
func DockerfilePath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "Dockerfile.cuda")
}

// Dockerfile is a parsed Dockerfile: its stages and its global ARGs.
type Dockerfile struct {
	Source []byte
	Stages []instructions.Stage
	Args   []instructions.ArgCommand
}

// Load parses the Dockerfile at path.
func Load(path string) (*Dockerfile, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	stages, args, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return &Dockerfile{Source: src, Stages: stages, Args: args}, nil
}

// Stage returns the stage called name.
func (d *Dockerfile) Stage(name string) (instructions.Stage, bool) {
	for _, s := range d.Stages {
		if s.Name == name {
			return s, true
		}
	}
	return instructions.Stage{}, false
}

// ArgDefaults maps each global ARG to its default ("" when it has none).
func (d *Dockerfile) ArgDefaults() map[string]string {
	m := map[string]string{}
	for _, a := range d.Args {
		for _, kv := range a.Args {
			v := ""
			if kv.Value != nil {
				v = *kv.Value
			}
			m[kv.Key] = v
		}
	}
	return m
}

// Runtime is what a container of a stage starts with.
type Runtime struct {
	Entrypoint []string
	Cmd        []string
	User       string
	Workdir    string
	// Env holds the stage's ENV, unexpanded.
	Env map[string]string
}

// RuntimeOf collects a stage's start-up settings, following "FROM stage"
// bases within the file.
func (d *Dockerfile) RuntimeOf(name string) (Runtime, error) {
	st, ok := d.Stage(name)
	if !ok {
		return Runtime{}, fmt.Errorf("no stage %q", name)
	}
	rt := Runtime{Env: map[string]string{}}
	if base, ok := d.Stage(st.BaseName); ok && base.Name != name {
		if rt, _ = d.RuntimeOf(base.Name); rt.Env == nil {
			rt.Env = map[string]string{}
		}
	}
	for _, c := range st.Commands {
		switch c := c.(type) {
		case *instructions.EntrypointCommand:
			rt.Entrypoint = c.CmdLine
			if c.PrependShell {
				rt.Entrypoint = append([]string{"/bin/sh", "-c"}, c.CmdLine...)
			}
		case *instructions.CmdCommand:
			rt.Cmd = c.CmdLine
		case *instructions.UserCommand:
			rt.User = c.User
		case *instructions.WorkdirCommand:
			rt.Workdir = c.Path
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				rt.Env[kv.Key] = kv.Value
			}
		}
	}
	return rt, nil
}
