package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100 on every Linux architecture's
// user-space ABI (proc(5): "clock ticks", sysconf(_SC_CLK_TCK)).
const userHZ = 100

// Group is a named set of process trees measured together, such as "milters" (OpenDKIM and clamav-milter).
type Group struct {
	Name  string
	Roots []int
}

// parseGroup parses NAME=PID[,PID...].
func parseGroup(s string) (Group, error) {
	name, list, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return Group{}, fmt.Errorf("-watch %q is not NAME=PID[,PID...]", s)
	}
	g := Group{Name: name}
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pid, err := strconv.Atoi(p)
		if err != nil || pid <= 0 {
			return Group{}, fmt.Errorf("-watch %q: %q is not a PID", s, p)
		}
		g.Roots = append(g.Roots, pid)
	}
	return g, nil
}

// procStat reads the CPU time of pid in clock ticks: utime+stime of the process and cutime+cstime of the
// children it has waited for (proc(5) fields 14 to 17).
func procStat(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): field k is f[k-3].
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	if f[0] == "Z" {
		return 0, fmt.Errorf("process %d is a zombie", pid)
	}
	var t int64
	for k := 14; k <= 17; k++ {
		v, err := strconv.ParseInt(f[k-3], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat field %d: %w", pid, k, err)
		}
		t += v
	}
	return t, nil
}

// children returns the PIDs of pid's children, from the children file of each of its threads.
func children(pid int) []int {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread or the process ended
		}
		for _, s := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(s); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// tree returns the roots and all their live descendants. A root that does not exist is an error.
func tree(roots []int) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	queue := append([]int(nil), roots...)
	for _, r := range roots {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", r)); err != nil {
			return nil, fmt.Errorf("process %d is not running", r)
		}
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
		queue = append(queue, children(p)...)
	}
	return out, nil
}

// treeCPU returns the CPU ticks of the trees of roots. A root that ended is an error (the relay died); a
// descendant that ends while it is read is skipped.
func treeCPU(roots []int) (int64, error) {
	pids, err := tree(roots)
	if err != nil {
		return 0, err
	}
	isRoot := map[int]bool{}
	for _, r := range roots {
		isRoot[r] = true
	}
	var t int64
	for _, p := range pids {
		v, err := procStat(p)
		if err != nil {
			if isRoot[p] {
				return 0, err
			}
			continue
		}
		t += v
	}
	return t, nil
}

// rssKB returns the resident set size of pid in KiB (/proc/PID/statm, field 2, in pages).
func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize()) / 1024
}

// pssKB returns the proportional set size of pid in KiB (/proc/PID/smaps_rollup): pages shared with other
// processes count for their share only, so that a sum over many processes of one program is not inflated
// by their common libraries.
func pssKB(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// GroupResult is what was measured of one group over a run.
type GroupResult struct {
	CPUTicks  int64 `json:"cpu_ticks"`   // user+system CPU of the group's trees during the run
	PeakRSSKB int64 `json:"peak_rss_kb"` // highest sum of the resident sets of the group's processes
	PeakPSSKB int64 `json:"peak_pss_kb"` // sum of their proportional set sizes at that moment
	Procs     int   `json:"procs"`       // processes in the group at that moment
}

// Meter measures groups of process trees during a run: CPU from its start to Stop, memory by sampling.
type Meter struct {
	groups   []Group
	start    []int64
	mu       sync.Mutex
	res      []GroupResult
	stop     chan struct{}
	finished chan struct{}
}

// StartMeter reads the groups' CPU and starts sampling their memory every interval.
func StartMeter(groups []Group, interval time.Duration) (*Meter, error) {
	m := &Meter{groups: groups, start: make([]int64, len(groups)), res: make([]GroupResult, len(groups)),
		stop: make(chan struct{}), finished: make(chan struct{})}
	for i, g := range groups {
		t, err := treeCPU(g.Roots)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", g.Name, err)
		}
		m.start[i] = t
	}
	m.sample()
	go func() {
		defer close(m.finished)
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tk.C:
				m.sample()
			}
		}
	}()
	return m, nil
}

// sample records each group's resident memory, and its PSS when the resident memory is a new peak.
func (m *Meter) sample() {
	for i, g := range m.groups {
		pids, err := tree(g.Roots)
		if err != nil {
			continue // Stop reports the dead root
		}
		var rss int64
		for _, p := range pids {
			rss += rssKB(p)
		}
		m.mu.Lock()
		peak := rss > m.res[i].PeakRSSKB
		m.mu.Unlock()
		if !peak {
			continue
		}
		var pss int64
		for _, p := range pids {
			pss += pssKB(p)
		}
		m.mu.Lock()
		m.res[i].PeakRSSKB, m.res[i].PeakPSSKB, m.res[i].Procs = rss, pss, len(pids)
		m.mu.Unlock()
	}
}

// Stop ends the sampling, takes a last sample and reads the CPU the groups used since StartMeter.
func (m *Meter) Stop() ([]GroupResult, error) {
	close(m.stop)
	<-m.finished
	m.sample()
	for i, g := range m.groups {
		t, err := treeCPU(g.Roots)
		if err != nil {
			return nil, fmt.Errorf("%s died during the run: %w", g.Name, err)
		}
		m.res[i].CPUTicks = t - m.start[i]
	}
	return m.res, nil
}
