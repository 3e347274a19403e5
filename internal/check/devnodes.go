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
	// NotGranted is true for a GPU node in NotGranted below.
	NotGranted bool `json:"not_granted,omitempty"`
}

// DeviceAccess is the state of the NVIDIA device nodes.
type DeviceAccess struct {
	// Nodes lists /dev/nvidiactl, /dev/nvidia-uvm and each /dev/nvidiaN.
	Nodes []DeviceNode `json:"nodes"`
	// GPUNodes counts the /dev/nvidiaN nodes.
	GPUNodes int `json:"gpu_nodes"`
	// GrantedGPUs counts the /dev/nvidiaN nodes that opened.
	GrantedGPUs int `json:"granted_gpus"`
	// CgroupDenied lists the existing nodes open refused with EPERM when the
	// device cgroup has lost the GPUs: /dev/nvidiactl or /dev/nvidia-uvm is
	// refused, or every GPU node is.
	CgroupDenied []string `json:"cgroup_denied,omitempty"`
	// NotGranted lists the GPU nodes refused with EPERM while
	// /dev/nvidiactl, /dev/nvidia-uvm and other GPU nodes open: the cgroup
	// grants a subset of the node's GPUs, as Slurm's ConstrainDevices does
	// (the node's /dev has them all). That is normal, not a loss.
	NotGranted []string `json:"not_granted,omitempty"`
}

// /dev is read with bounds: a container's has a few hundred entries, a
// node's a few thousand; no machine has more than maxGPUNodes GPUs.
const (
	maxDevEntries = 1 << 16
	maxGPUNodes   = 256
)

// listDir calls keep with the name of each entry of dir, at most max
// entries, until keep returns false; it reads in small pieces (os.ReadDir
// holds the whole directory). Errors end the listing.
func listDir(dir string, max int, keep func(name string) bool) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	var buf [8192]byte
	seen := 0
	readNames(fd, buf[:], func(name string) bool {
		seen++
		return seen <= max && keep(name)
	})
}

// readNames calls keep with each entry name of the open directory fd but
// "." and "..", reading buf's worth of entries at a time and making a
// string of each name only when keep is about to see it, until keep
// returns false or the directory ends; it returns getdents' error.
func readNames(fd int, buf []byte, keep func(name string) bool) error {
	var names []string
	for {
		n, err := getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return err
		}
		for b := buf[:n]; len(b) > 0; {
			var used int
			used, _, names = unix.ParseDirent(b, 1, names[:0])
			b = b[used:]
			if len(names) == 1 && !keep(names[0]) {
				return nil
			}
		}
	}
}

// CheckDeviceAccess opens /dev/nvidiactl, /dev/nvidia-uvm and each
// /dev/nvidiaN (under the Env's root) with Env.OpenDevice. Opening a node
// that exists and getting EPERM is the signature of a container whose
// device cgroup lost its GPUs (NVML then says "Unknown Error"), unless the
// refused nodes are only some of the GPUs: a cgroup that grants a subset.
func CheckDeviceAccess(e *Env) DeviceAccess {
	open := e.OpenDevice
	if open == nil {
		open = openDevice
	}
	paths := []string{"/dev/nvidiactl", "/dev/nvidia-uvm"}
	var gpus []int
	listDir(e.Path("/dev"), maxDevEntries, func(name string) bool {
		if n, ok := strings.CutPrefix(name, "nvidia"); ok {
			if i, err := strconv.Atoi(n); err == nil && i >= 0 {
				gpus = append(gpus, i)
			}
		}
		return len(gpus) < maxGPUNodes
	})
	sort.Ints(gpus)
	for _, i := range gpus {
		paths = append(paths, "/dev/nvidia"+strconv.Itoa(i))
	}
	a := DeviceAccess{GPUNodes: len(gpus)}
	var eperm []string
	controlDenied := false
	for _, p := range paths {
		n := DeviceNode{Path: p}
		if _, err := os.Stat(e.Path(p)); err == nil {
			n.Exists = true
			if err := open(e.Path(p)); err != nil {
				n.Error = errText(err)
				n.Denied = errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
				if errors.Is(err, unix.EPERM) {
					eperm = append(eperm, p)
					controlDenied = controlDenied || p == "/dev/nvidiactl" || p == "/dev/nvidia-uvm"
				}
			} else if p != "/dev/nvidiactl" && p != "/dev/nvidia-uvm" {
				a.GrantedGPUs++
			}
		}
		a.Nodes = append(a.Nodes, n)
	}
	if len(eperm) == 0 {
		return a
	}
	if controlDenied || a.GrantedGPUs == 0 {
		a.CgroupDenied = eperm
		return a
	}
	a.NotGranted = eperm
	for i := range a.Nodes {
		for _, p := range eperm {
			if a.Nodes[i].Path == p {
				a.Nodes[i].NotGranted = true
			}
		}
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

// CgroupLostHint is the advice for a container or job whose device cgroup
// lost its GPUs, in the runtime's words: the NVIDIA Container Toolkit's
// (restart; CDI or the /dev/char links against a recurrence) where a
// container engine set the cgroup up, and the scheduler's where Slurm did.
func CgroupLostHint(rt Runtime) string {
	const devChar = "create the /dev/char links the toolkit documents (sudo nvidia-ctk system create-dev-char-symlinks --create-all)"
	switch rt.Name {
	case "kubernetes":
		return "delete the pod so that it restarts; to stop it recurring, enable CDI in the NVIDIA device plugin or GPU Operator (cdi.enabled=true), or create the /dev/char links the toolkit documents (nvidia-ctk system create-dev-char-symlinks --create-all on the node)"
	case "slurm", "pyxis":
		// Slurm's task/cgroup plugin owns the job's device cgroup: only the
		// node's admins can change how it is set up.
		return "submit the job again with its GPUs: " + rt.GPUHint() + "; if it recurs, tell the cluster's admins (the node's device cgroup dropped the job's GPUs: systemctl daemon-reload on a node whose slurmd does not own its cgroups)"
	case "apptainer":
		return "start the container again: " + rt.Command(rt.gpuFlag) + "; to stop it recurring, " + devChar + " on the host, or with Apptainer 1.5.0 and later request GPUs through CDI (sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml, then " + rt.Command("--device nvidia.com/gpu=all") + ")"
	case "containerd":
		return "start the container again (" + rt.Command(rt.gpuFlag) + "); to stop it recurring, " + devChar + " on the host"
	}
	return "restart the container now; to stop it recurring, request GPUs through CDI (on the host: sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml, then " + rt.CDIHint() +
		") or " + devChar
}
