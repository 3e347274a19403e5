//go:build gpu

package e2e

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// binDir holds nss-entrypoint, nss-gpu-probe and safe-synthesizer (the fake
// target), as `make e2e-gpu` or the device script lays them out.
func binDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("NSS_E2E_BIN")
	if dir == "" {
		t.Fatal("NSS_E2E_BIN is not set: run make e2e-gpu")
	}
	return dir
}

// smiRow is one GPU as nvidia-smi describes it.
type smiRow struct {
	Index, Name, UUID, Driver string
	MemoryMiB                 int
	ComputeCap, Persistence   string
	MIG                       string
}

func requireGPU(t *testing.T) []smiRow {
	t.Helper()
	if _, err := os.Stat("/dev/nvidiactl"); err != nil {
		t.Skip("no GPU here: /dev/nvidiactl does not exist")
	}
	smi, err := exec.LookPath("nvidia-smi")
	if err != nil {
		t.Skip("no GPU here: nvidia-smi is not on PATH")
	}
	out, err := exec.Command(smi, "--query-gpu=index,name,uuid,driver_version,memory.total,compute_cap,persistence_mode,mig.mode.current",
		"--format=csv,noheader,nounits").Output()
	if err != nil {
		t.Skipf("nvidia-smi failed, so this host has no usable GPU: %v", err)
	}
	r := csv.NewReader(bytes.NewReader(out))
	r.TrimLeadingSpace = true
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("nvidia-smi CSV: %v\n%s", err, out)
	}
	var rows []smiRow
	for _, f := range recs {
		mem, _ := strconv.Atoi(strings.TrimSpace(f[4]))
		rows = append(rows, smiRow{f[0], f[1], f[2], f[3], mem, f[5], f[6], f[7]})
	}
	t.Logf("nvidia-smi: %+v", rows)
	return rows
}

// smiCUDA reads "CUDA Version : 13.0" from nvidia-smi -q.
func smiCUDA(t *testing.T) string {
	out, err := exec.Command("nvidia-smi", "-q").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "CUDA Version" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

type probeReport struct {
	Loaded            bool   `json:"loaded"`
	DriverVersion     string `json:"driver_version"`
	CUDADriverVersion int    `json:"cuda_driver_version"`
	NVMLVersion       string `json:"nvml_version"`
	Devices           []struct {
		Index             int    `json:"index"`
		Name              string `json:"name"`
		UUID              string `json:"uuid"`
		MemoryTotalBytes  uint64 `json:"memory_total_bytes"`
		ComputeCapability string `json:"compute_capability"`
		MIGMode           string `json:"mig_mode"`
		PersistenceMode   string `json:"persistence_mode"`
	} `json:"devices"`
	Unavailable []string `json:"unavailable"`
}

func smiEnabled(s string) string {
	switch strings.TrimSpace(s) {
	case "Enabled":
		return "enabled"
	case "Disabled":
		return "disabled"
	}
	return "" // [N/A]
}

func TestProbeMatchesNvidiaSMI(t *testing.T) {
	rows := requireGPU(t)
	start := time.Now()
	out, err := exec.Command(filepath.Join(binDir(t), "nss-gpu-probe")).Output()
	t.Logf("nss-gpu-probe took %v", time.Since(start))
	if err != nil {
		t.Fatalf("nss-gpu-probe: %v", err)
	}
	var rep probeReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !rep.Loaded || len(rep.Devices) != len(rows) {
		t.Fatalf("probe saw %d devices (loaded %v), nvidia-smi %d", len(rep.Devices), rep.Loaded, len(rows))
	}
	if len(rep.Unavailable) > 0 {
		t.Errorf("functions unavailable on this driver: %v", rep.Unavailable)
	}
	for i, row := range rows {
		d := rep.Devices[i]
		if strconv.Itoa(d.Index) != row.Index || d.Name != row.Name || d.UUID != row.UUID || rep.DriverVersion != row.Driver ||
			int(d.MemoryTotalBytes>>20) != row.MemoryMiB || d.ComputeCapability != row.ComputeCap {
			t.Errorf("GPU %d differs:\n probe %+v driver %s\n smi   %+v", i, d, rep.DriverVersion, row)
		}
		if want := smiEnabled(row.Persistence); want != "" && d.PersistenceMode != want {
			t.Errorf("GPU %d persistence %q, nvidia-smi %q", i, d.PersistenceMode, row.Persistence)
		}
		if want := smiEnabled(row.MIG); want != d.MIGMode && !(want == "" && d.MIGMode == "") {
			t.Errorf("GPU %d MIG %q, nvidia-smi %q", i, d.MIGMode, row.MIG)
		}
	}
	cuda := smiCUDA(t)
	if got := fmt.Sprintf("%d.%d", rep.CUDADriverVersion/1000, rep.CUDADriverVersion%1000/10); got != cuda {
		t.Errorf("CUDA %s, nvidia-smi %s", got, cuda)
	}
}

func TestDiagnoseMatchesNvidiaSMI(t *testing.T) {
	rows := requireGPU(t)
	cmd := exec.Command(filepath.Join(binDir(t), "nss-entrypoint"), "--diagnose", "--format", "json", "--no-redact")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, _ := cmd.Output() // exit 1 is fine: no /workspace on a bare host
	var doc struct {
		Checks []struct {
			ID, Status, Message string
			Data                map[string]any
		} `json:"checks"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("%v: %s\nstderr: %s", err, out, stderr.String())
	}
	byID := map[string]map[string]any{}
	msg := map[string]string{}
	for _, c := range doc.Checks {
		byID[c.ID], msg[c.ID] = c.Data, c.Status+": "+c.Message
	}
	if !strings.HasPrefix(msg["gpu"], "ok: ") {
		t.Fatalf("gpu check: %s", msg["gpu"])
	}
	g := byID["gpu"]
	if int(g["devices"].(float64)) != len(rows) || g["driver_version"] != rows[0].Driver || g["cuda_version"] != smiCUDA(t) {
		t.Errorf("gpu data %v vs nvidia-smi %+v", g, rows)
	}
	devs := byID["gpu-memory"]["devices"].([]any)
	for i, row := range rows {
		d := devs[i].(map[string]any)
		if d["name"] != row.Name || int(uint64(d["memory_total_bytes"].(float64))>>20) != row.MemoryMiB {
			t.Errorf("GPU %d: %v vs %+v", i, d, row)
		}
	}
	caps := byID["gpu-compute"]["compute_capabilities"].([]any)
	for i, row := range rows {
		if caps[i] != row.ComputeCap {
			t.Errorf("GPU %d compute capability %v, nvidia-smi %s", i, caps[i], row.ComputeCap)
		}
	}
	for _, id := range []string{"gpu-driver", "gpu-compute", "gpu-memory", "gpu-uvm"} {
		t.Logf("%s: %s", id, msg[id])
	}
}

// targetRun starts bin with the fake target's report in a file and returns
// the descriptors the target had.
func targetFDs(t *testing.T, bin string, env []string) []string {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(bin)
	cmd.Env = append(env, "FAKE_TARGET_REPORT="+report)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		FDs map[string]string `json:"fds"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	var fds []string
	for k, v := range r.FDs {
		// Pipes and the report file differ from run to run; what matters
		// is which descriptors exist and what kind they are.
		switch {
		case strings.HasPrefix(v, "pipe:"):
			v = "pipe"
		case v == report:
			v = "report"
		}
		fds = append(fds, k+"="+v)
	}
	slices.Sort(fds)
	return fds
}

func hostEnv(dir string, extra ...string) []string {
	env := []string{"PATH=" + dir + ":/usr/local/bin:/usr/bin:/bin", "HOME=/root"}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LD_LIBRARY_PATH=") || strings.HasPrefix(kv, "NVIDIA_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func TestNoNVMLDescriptorLeaksIntoTheTarget(t *testing.T) {
	requireGPU(t)
	dir := binDir(t)
	direct := targetFDs(t, filepath.Join(dir, "safe-synthesizer"), hostEnv(dir))
	via := targetFDs(t, filepath.Join(dir, "nss-entrypoint"), hostEnv(dir))
	if !slices.Equal(direct, via) {
		t.Errorf("descriptors differ:\n direct %v\n via    %v", direct, via)
	}
	for _, fd := range via {
		if strings.Contains(fd, "nvidia") {
			t.Errorf("an NVIDIA descriptor reached the target: %s", fd)
		}
	}
}

func TestLDBindNowOnARealDriver(t *testing.T) {
	requireGPU(t)
	dir := binDir(t)
	// The helper alone dies with LD_BIND_NOW (docs/design.md gives the measurement)...
	probe := exec.Command(filepath.Join(dir, "nss-gpu-probe"))
	probe.Env = hostEnv(dir, "LD_BIND_NOW=1")
	out, err := probe.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 127 || !strings.Contains(string(out), "undefined symbol") {
		// A driver that exports every symbol go-nvml binds would end the
		// reason for stripping LD_BIND_NOW; say so rather than pass.
		t.Errorf("nss-gpu-probe with LD_BIND_NOW=1: %v, %.200s; want exit 127 and an undefined symbol", err, out)
	}
	// ...but the entrypoint removes it for the helper and reports the GPUs.
	ep := exec.Command(filepath.Join(dir, "nss-entrypoint"))
	ep.Env = hostEnv(dir, "LD_BIND_NOW=1", "FAKE_TARGET_EXIT=7", "NSS_WORKSPACE=/", "HF_HOME=/tmp", "HF_TOKEN=x")
	var stderr bytes.Buffer
	ep.Stderr = &stderr
	err = ep.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Fatalf("exit %v, want the target's 7; stderr %s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "GPU") || strings.Contains(stderr.String(), "crashed") {
		t.Errorf("stderr: %s", stderr.String())
	}
	t.Logf("entrypoint stderr with LD_BIND_NOW=1: %s", strings.TrimSpace(stderr.String()))
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestStartTimeWithTheGPUProbe(t *testing.T) {
	requireGPU(t)
	dir := binDir(t)
	env := hostEnv(dir, "NSS_WORKSPACE=/", "HF_HOME=/tmp", "HF_TOKEN=x", "FAKE_TARGET_STDOUT=")
	variants := []struct {
		name string
		bin  string
		env  []string
	}{
		{"target directly", filepath.Join(dir, "safe-synthesizer"), env},
		{"minimal Go exec", filepath.Join(dir, "minexec"), append(slices.Clone(env), "MINEXEC_TARGET=safe-synthesizer")},
		{"nss-entrypoint, checks off", filepath.Join(dir, "nss-entrypoint"), append(slices.Clone(env), "NSS_ENTRYPOINT_CHECKS=off")},
		{"nss-entrypoint, all checks, real GPU", filepath.Join(dir, "nss-entrypoint"), env},
		{"nss-gpu-probe alone", filepath.Join(dir, "nss-gpu-probe"), env},
	}
	runs := make([][]time.Duration, len(variants))
	for i := 0; i < 20; i++ {
		for j, v := range variants {
			cmd := exec.Command(v.bin)
			cmd.Env = v.env
			start := time.Now()
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %v", v.name, err)
			}
			runs[j] = append(runs[j], time.Since(start))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| %-38s | %12s |\n|%s|%s|\n", "start time (median of 20)", "median", strings.Repeat("-", 40), strings.Repeat("-", 14))
	for j, v := range variants {
		fmt.Fprintf(&b, "| %-38s | %12s |\n", v.name, median(runs[j]).Round(10*time.Microsecond))
	}
	t.Log("\n" + b.String())
	if out := os.Getenv("NSS_E2E_OUT"); out != "" {
		os.WriteFile(filepath.Join(out, "gpu-start-times.md"), []byte(b.String()), 0o644)
	}
}

// TestStartTimeNoGPUPath measures the start-up budget of the core issue on
// this host's CPUs: the entrypoint with every check but a GPU (a root with
// workspace data, a cache and /dev/shm, and no device nodes) against the
// minimal Go exec program, 300 rounds in a random order each.
func TestStartTimeNoGPUPath(t *testing.T) {
	requireGPU(t) // only to run where the GPU suite runs; the GPU is not used
	dir := binDir(t)
	root := t.TempDir()
	for _, d := range []string{"workspace/data", "hf", "dev/shm", "proc/self"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "workspace/data/train.csv"), []byte("a\n"), 0o644)
	if info, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		os.WriteFile(filepath.Join(root, "proc/self/mountinfo"), info, 0o644)
	}
	env := []string{"PATH=" + dir + ":/usr/bin:/bin", "HOME=/root", "HF_HOME=/hf", "HF_TOKEN=x",
		"NSS_ENTRYPOINT_ROOT=" + root, "FAKE_TARGET_STDOUT=", "MINEXEC_TARGET=safe-synthesizer"}
	variants := []struct {
		name string
		bin  string
		env  []string
	}{
		{"minimal Go exec", filepath.Join(dir, "minexec"), env},
		{"nss-entrypoint, checks off", filepath.Join(dir, "nss-entrypoint"), append(slices.Clone(env), "NSS_ENTRYPOINT_CHECKS=off")},
		{"nss-entrypoint, all checks, no GPU", filepath.Join(dir, "nss-entrypoint"), env},
	}
	runs := make([][]time.Duration, len(variants))
	order := []int{0, 1, 2}
	for i := 0; i < 300; i++ {
		order[0], order[i%3] = order[i%3], order[0]
		if i%2 == 1 {
			order[1], order[2] = order[2], order[1]
		}
		for _, j := range order {
			v := variants[j]
			cmd := exec.Command(v.bin)
			cmd.Env = v.env
			start := time.Now()
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %v", v.name, err)
			}
			runs[j] = append(runs[j], time.Since(start))
		}
	}
	base := median(runs[0])
	var b strings.Builder
	fmt.Fprintf(&b, "| %-38s | %10s | %8s |\n|%s|%s|%s|\n", "no-GPU start (median of 300)", "median", "ratio", strings.Repeat("-", 40), strings.Repeat("-", 12), strings.Repeat("-", 10))
	for j, v := range variants {
		m := median(runs[j])
		fmt.Fprintf(&b, "| %-38s | %10s | %7.2fx |\n", v.name, m.Round(10*time.Microsecond), float64(m)/float64(base))
	}
	t.Log("\n" + b.String())
	if out := os.Getenv("NSS_E2E_OUT"); out != "" {
		os.WriteFile(filepath.Join(out, "no-gpu-start-times.md"), []byte(b.String()), 0o644)
	}
}
