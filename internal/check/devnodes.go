package check

import (
	"errors"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DeviceNode is one NVIDIA device node and what opening it did.
type DeviceNode struct {
	Path   string `json:"path"`
	Exists bool   `json:"exists"`
	// Error is open's error, "" when it opened.
	Error string `json:"error,omitempty"`
	// Denied is true when open failed with EPERM (the device cgroup) or
	// EACCES (file permissions) although the node exists.
	Denied bool `json:"denied,omitempty"`
}

// DeviceAccess is the state of the NVIDIA device nodes.
type DeviceAccess struct {
	// Nodes lists /dev/nvidiactl, /dev/nvidia-uvm and each /dev/nvidiaN.
	Nodes []DeviceNode `json:"nodes"`
	// GPUNodes counts the /dev/nvidiaN nodes.
	GPUNodes int `json:"gpu_nodes"`
	// CgroupDenied lists the existing nodes open refused with EPERM: the
	// device cgroup no longer allows them.
	CgroupDenied []string `json:"cgroup_denied,omitempty"`
}

// CheckDeviceAccess opens /dev/nvidiactl, /dev/nvidia-uvm and each
// /dev/nvidiaN (under the Env's root) with Env.OpenDevice. Opening a node
// that exists and getting EPERM is the signature of a container whose
// device cgroup lost its GPUs: NVML then says "Unknown Error".
func CheckDeviceAccess(e *Env) DeviceAccess {
	open := e.OpenDevice
	if open == nil {
		open = openDevice
	}
	paths := []string{"/dev/nvidiactl", "/dev/nvidia-uvm"}
	var gpus []int
	if ents, err := os.ReadDir(e.Path("/dev")); err == nil {
		for _, ent := range ents {
			if n, ok := strings.CutPrefix(ent.Name(), "nvidia"); ok {
				if i, err := strconv.Atoi(n); err == nil && i >= 0 {
					gpus = append(gpus, i)
				}
			}
		}
	}
	sort.Ints(gpus)
	for _, i := range gpus {
		paths = append(paths, "/dev/nvidia"+strconv.Itoa(i))
	}
	a := DeviceAccess{GPUNodes: len(gpus)}
	for _, p := range paths {
		n := DeviceNode{Path: p}
		if _, err := os.Stat(e.Path(p)); err == nil {
			n.Exists = true
			if err := open(e.Path(p)); err != nil {
				n.Error = errText(err)
				n.Denied = errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
				if errors.Is(err, unix.EPERM) {
					a.CgroupDenied = append(a.CgroupDenied, p)
				}
			}
		}
		a.Nodes = append(a.Nodes, n)
	}
	return a
}

// openDevice opens a device node read-write, as the driver libraries do,
// and closes it again.
func openDevice(path string) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	return unix.Close(fd)
}

// errText is an error's message without the path an *os.PathError adds.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// CgroupLostHint is the NVIDIA Container Toolkit's advice for a container
// whose device cgroup lost its GPUs, in the runtime's words.
func CgroupLostHint(rt Runtime) string {
	fix := "restart the container now; to stop it recurring, request GPUs through CDI (on the host: sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml, then " + rt.CDIHint() +
		") or create the /dev/char links the toolkit documents (sudo nvidia-ctk system create-dev-char-symlinks --create-all)"
	if rt.Name == "kubernetes" {
		fix = "delete the pod so that it restarts; to stop it recurring, enable CDI in the NVIDIA device plugin or GPU Operator (cdi.enabled=true), or create the /dev/char links the toolkit documents (nvidia-ctk system create-dev-char-symlinks --create-all on the node)"
	}
	return fix
}
