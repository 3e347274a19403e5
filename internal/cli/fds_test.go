package cli

import (
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The pids limit that binds is found wherever the process's cgroup and
// the cgroups above it show one, under cgroup v2 or v1's pids controller,
// inside a container's own cgroup namespace or on a host.
func TestPidsHeadroom(t *testing.T) {
	v1Docker := "12:pids:/docker/ab12\n11:memory:/docker/ab12\n0::/system.slice/docker.service\n"
	tests := []struct {
		name  string
		files map[string]string
		want  pidsCgroup
		found bool
	}{
		{"cgroup v2, own namespace", map[string]string{
			"/proc/self/cgroup":                 "0::/\n",
			"/sys/fs/cgroup/pids.max":           "5\n",
			"/sys/fs/cgroup/pids.current":       "3\n",
			"/sys/fs/cgroup/pids/pids.max":      "garbage",
			"/sys/fs/cgroup/pids/pids.current":  "1",
			"/sys/fs/cgroup/unrelated/pids.max": "1",
		}, pidsCgroup{"/sys/fs/cgroup", 5, 3}, true},
		{"cgroup v2 without a limit", map[string]string{
			"/proc/self/cgroup":           "0::/\n",
			"/sys/fs/cgroup/pids.max":     "max\n",
			"/sys/fs/cgroup/pids.current": "3\n",
		}, pidsCgroup{}, false},
		// Docker on cgroup v1 mounts the container's own cgroup at
		// /sys/fs/cgroup/pids; /proc/self/cgroup names the host's path.
		{"cgroup v1, Docker", map[string]string{
			"/proc/self/cgroup":                "12:cpu,pids:/docker/ab12\n0::/system.slice/docker.service\n",
			"/sys/fs/cgroup/pids/pids.max":     "8",
			"/sys/fs/cgroup/pids/pids.current": "4",
		}, pidsCgroup{"/sys/fs/cgroup/pids", 8, 4}, true},
		// On a host (a Slurm step), the job's cgroup two levels up sets
		// the limit; the step's own says max.
		{"cgroup v2 host, a limit above", map[string]string{
			"/proc/self/cgroup": "0::/system.slice/slurmstepd.scope/job_7/step_0\n",
			"/sys/fs/cgroup/system.slice/slurmstepd.scope/job_7/step_0/pids.max":     "max",
			"/sys/fs/cgroup/system.slice/slurmstepd.scope/job_7/step_0/pids.current": "12",
			"/sys/fs/cgroup/system.slice/slurmstepd.scope/job_7/pids.max":            "40",
			"/sys/fs/cgroup/system.slice/slurmstepd.scope/job_7/pids.current":        "30",
			"/sys/fs/cgroup/system.slice/slurmstepd.scope/pids.max":                  "1000",
			"/sys/fs/cgroup/system.slice/slurmstepd.scope/pids.current":              "31",
		}, pidsCgroup{"/sys/fs/cgroup/system.slice/slurmstepd.scope/job_7", 40, 30}, true},
		{"cgroup v1 host, the tighter of two", map[string]string{
			"/proc/self/cgroup":                              v1Docker,
			"/sys/fs/cgroup/pids/docker/ab12/pids.max":       "100",
			"/sys/fs/cgroup/pids/docker/ab12/pids.current":   "10",
			"/sys/fs/cgroup/pids/docker/pids.max":            "50",
			"/sys/fs/cgroup/pids/docker/pids.current":        "45",
			"/sys/fs/cgroup/system.slice/docker.service/x":   "",
			"/sys/fs/cgroup/system.slice/pids.max":           "9",
			"/sys/fs/cgroup/system.slice/pids.current":       "not a number",
			"/sys/fs/cgroup/system.slice/docker.service/y/z": "",
		}, pidsCgroup{"/sys/fs/cgroup/pids/docker", 50, 45}, true},
		// On cgroup v2 alone a cgroup may be called pids: no v1 line names
		// the controller, so it is not read as v1's.
		{"cgroup v2, a cgroup named pids", map[string]string{
			"/proc/self/cgroup":                "0::/\n",
			"/sys/fs/cgroup/pids/pids.max":     "4",
			"/sys/fs/cgroup/pids/pids.current": "0",
		}, pidsCgroup{}, false},
		// Without /proc/self/cgroup, each mount's own files.
		{"no /proc/self/cgroup", map[string]string{
			"/sys/fs/cgroup/pids/pids.max":     "6",
			"/sys/fs/cgroup/pids/pids.current": "2",
		}, pidsCgroup{"/sys/fs/cgroup/pids", 6, 2}, true},
		// A limit at the top of a path deeper than maxCgroupLevels.
		{"a limit 40 levels up", map[string]string{
			"/proc/self/cgroup":                                              "0::/rx" + strings.Repeat("/l", 40) + "\n",
			"/sys/fs/cgroup/rx/pids.max":                                     "10",
			"/sys/fs/cgroup/rx/pids.current":                                 "5",
			"/sys/fs/cgroup/rx" + strings.Repeat("/l", 40) + "/pids.max":     "max",
			"/sys/fs/cgroup/rx" + strings.Repeat("/l", 40) + "/pids.current": "1",
		}, pidsCgroup{"/sys/fs/cgroup/rx", 10, 5}, true},
		// Outside the cgroup namespace's root: the path is not followed
		// out of the mount.
		{"a path that leaves the namespace", map[string]string{
			"/proc/self/cgroup":                   "0::/../../x\n",
			"/sys/fs/cgroup/../../x/pids.max":     "1",
			"/sys/fs/cgroup/../../x/pids.current": "0",
			"/sys/fs/cgroup/pids.max":             "100",
			"/sys/fs/cgroup/pids.current":         "50",
		}, pidsCgroup{"/sys/fs/cgroup", 100, 50}, true},
		{"no cgroup files at all", map[string]string{}, pidsCgroup{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			read := func(name string, limit int) ([]byte, error) {
				if s, ok := tc.files[name]; ok {
					return []byte(s), nil
				}
				return nil, os.ErrNotExist
			}
			got, found := pidsHeadroom(read)
			if got != tc.want || found != tc.found {
				t.Errorf("pidsHeadroom = %+v, %v; want %+v, %v", got, found, tc.want, tc.found)
			}
		})
	}
}

func TestNprocScarce(t *testing.T) {
	cases := []struct {
		name     string
		helpers  bool
		limit    uint64
		exempt   bool
		all      int
		allOK    bool
		uidTasks int
		want     string
	}{
		{"exempt: root of the initial user namespace", true, 10, true, 500, true, 400, ""},
		{"a limit below 256", false, 100, false, 50, true, 1, "RLIMIT_NPROC (ulimit -u) is 100"},
		{"ample without helpers", false, 300, false, 5000, true, 299, ""},
		{"the whole system leaves room", true, 4096, false, 1000, true, -1, ""},
		{"the uid's tasks leave room", true, 4096, false, 5000, true, 100, ""},
		{"the uid's tasks leave too little", true, 300, false, 400, true, 290, "RLIMIT_NPROC (ulimit -u) is 300 and uid 1000 has 290 tasks"},
		{"exactly minFreeTasks left", true, 300, false, 400, true, 300 - minFreeTasks, ""},
		{"one fewer", true, 300, false, 400, true, 301 - minFreeTasks, "RLIMIT_NPROC (ulimit -u) is 300 and uid 1000 has 269 tasks"},
		{"loadavg unreadable: counted", true, 300, false, 0, false, 295, "RLIMIT_NPROC (ulimit -u) is 300 and uid 1000 has 295 tasks"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := nprocScarce(c.helpers, c.limit, 1000, func() bool { return c.exempt },
				func() (int, bool) { return c.all, c.allOK },
				func(uid int) int {
					if c.uidTasks < 0 {
						t.Error("the uid's tasks were counted where the whole system leaves room")
					}
					return c.uidTasks
				})
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// uidTasks counts this process's own threads among its uid's, and allTasks
// reads a number at least as large.
func TestTaskCounts(t *testing.T) {
	mine := uidTasks(os.Geteuid())
	all, ok := allTasks()
	if mine < 1 || !ok || all < mine {
		t.Errorf("uidTasks = %d, allTasks = %d, %v", mine, all, ok)
	}
}

// RLIMIT_NPROC counts by real uid: the first of "Uid:"'s four, not the
// effective one that owns /proc/PID (a process after setresuid(0, 65534,
// 0) counts for 0, not for 65534).
func TestStatusUidThreads(t *testing.T) {
	status := "Name:\tpython3\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t0\t65534\t0\t65534\nGid:\t0\t0\t0\t0\nThreads:\t3\n"
	if uid, threads := statusUidThreads(status); uid != "0" || threads != 3 {
		t.Errorf("statusUidThreads = %q, %d; want 0, 3", uid, threads)
	}
	if uid, threads := statusUidThreads("Name:\tx\n"); uid != "" || threads != 0 {
		t.Errorf("statusUidThreads without the lines = %q, %d", uid, threads)
	}
}

// descriptorsFree gives back every descriptor it takes, and closes none of
// the process's own, whether the free numbers it gets are consecutive (with
// one of the process's own right above them) or lie between open ones.
func TestDescriptorsFreeClosesOnlyItsCopies(t *testing.T) {
	openFDs := func() []string {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	for _, holes := range []bool{false, true} {
		// Eight descriptors of the test's own, then the first four closed
		// (the copies take those, one of ours right above), or, with
		// holes, every other one, so that the copies fall between ours.
		var mine []int
		for range 8 {
			fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			mine = append(mine, fd)
		}
		for i := range mine {
			if holes && i%2 == 0 || !holes && i < needDescriptorsInline {
				unix.Close(mine[i])
				mine[i] = -1
			}
		}
		before := openFDs()
		free, _, ok := descriptorsFree(needDescriptorsInline)
		if !ok || free != needDescriptorsInline {
			t.Fatalf("holes %v: descriptorsFree = %d, %v; want %d, true", holes, free, ok, needDescriptorsInline)
		}
		// (The listing's own descriptor takes the same number each time.)
		if after := openFDs(); !slices.Equal(before, after) {
			t.Errorf("holes %v: open descriptors before %v, after %v", holes, before, after)
		}
		for _, fd := range mine {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}
}
