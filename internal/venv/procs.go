package venv

import (
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// members lists the processes of the environment whose supervisor is sup:
// every process in sup's mount namespace and every descendant of sup (a
// program may have entered namespaces of its own), without sup itself,
// sorted. Processes that vanish while /proc is read are left out.
func members(sup int) []int {
	ns, err := os.Readlink("/proc/" + strconv.Itoa(sup) + "/ns/mnt")
	if err != nil {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := make(map[int][]int)
	in := make(map[int]bool)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == sup {
			continue
		}
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/mnt"); err == nil && l == ns {
			in[pid] = true
		}
		if pp := ppid(pid); pp > 0 {
			children[pp] = append(children[pp], pid)
		}
	}
	// Descendants of sup.
	seen := make(map[int]bool)
	queue := slices.Clone(children[sup])
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p], in[p] = true, true
		queue = append(queue, children[p]...)
	}
	out := make([]int, 0, len(in))
	for p := range in {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// ppid reads a process's parent from /proc/<pid>/stat, 0 when unknown.
func ppid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold anything: skip to its end.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	pp, _ := strconv.Atoi(f[1])
	return pp
}

// signalAll sends sig to every member of sup's environment and returns how
// many it signalled. Each process is pinned with a pidfd and checked again
// before it is signalled, so that a process id reused meanwhile by an
// unrelated process is left alone.
func signalAll(sup int, sig unix.Signal) int {
	ns, err := os.Readlink("/proc/" + strconv.Itoa(sup) + "/ns/mnt")
	if err != nil {
		return 0
	}
	list := members(sup)
	set := make(map[int]bool, len(list))
	for _, p := range list {
		set[p] = true
	}
	n := 0
	for _, pid := range list {
		pfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue
		}
		l, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/mnt")
		if pp := ppid(pid); l == ns || pp == sup || set[pp] {
			if unix.PidfdSendSignal(pfd, sig, nil, 0) == nil {
				n++
			}
		}
		unix.Close(pfd)
	}
	return n
}
