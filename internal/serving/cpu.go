package serving

import (
	"fmt"
	"time"

	"github.com/prometheus/procfs"
)

// userHZ is the kernel's USER_HZ, the unit of /proc/PID/stat times (100 on
// every Linux architecture petrel runs on).
const userHZ = 100

// ProcessTreeCPUSeconds returns the CPU time in seconds (user + system,
// including reaped children's) of every live process in pid's process
// group or descended from pid, read from /proc.
func ProcessTreeCPUSeconds(fs procfs.FS, pid int) (float64, error) {
	procs, err := fs.AllProcs()
	if err != nil {
		return 0, fmt.Errorf("list processes in /proc: %w", err)
	}
	stats := make(map[int]procfs.ProcStat, len(procs))
	children := map[int][]int{}
	for _, p := range procs {
		st, err := p.Stat()
		if err != nil {
			continue // exited while listing
		}
		stats[st.PID] = st
		children[st.PPID] = append(children[st.PPID], st.PID)
	}
	if _, ok := stats[pid]; !ok {
		return 0, fmt.Errorf("process %d is not running", pid)
	}
	member := map[int]bool{}
	for id, st := range stats {
		if st.PGRP == pid {
			member[id] = true
		}
	}
	queue := []int{pid}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		member[id] = true
		queue = append(queue, children[id]...)
	}
	var ticks uint64
	for id := range member {
		st := stats[id]
		ticks += uint64(st.UTime) + uint64(st.STime) + uint64(max(st.CUTime, 0)) + uint64(max(st.CSTime, 0))
	}
	return float64(ticks) / userHZ, nil
}

type cpuReading struct {
	seconds float64
	at      time.Time
}

// CPUSampler turns successive CPU-time readings of replicas into usage in
// millicores, as metrics-server reports a pod's CPU usage over a window.
type CPUSampler struct {
	FS   procfs.FS
	last map[string]cpuReading
}

// NewCPUSampler reads /proc.
func NewCPUSampler() (*CPUSampler, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return nil, fmt.Errorf("open /proc for CPU metrics: %w", err)
	}
	return &CPUSampler{FS: fs, last: map[string]cpuReading{}}, nil
}

// Sample reads replica name's process tree (rooted at pid) and returns its
// CPU usage in millicores since the previous Sample of the same name; ok
// is false on the first reading or when the process is gone.
func (s *CPUSampler) Sample(name string, pid int, now time.Time) (millicores float64, ok bool) {
	secs, err := ProcessTreeCPUSeconds(s.FS, pid)
	if err != nil {
		delete(s.last, name)
		return 0, false
	}
	prev, had := s.last[name]
	s.last[name] = cpuReading{secs, now}
	if !had || !now.After(prev.at) || secs < prev.seconds {
		return 0, false
	}
	return (secs - prev.seconds) / now.Sub(prev.at).Seconds() * 1000, true
}

// Has reports whether a replica has a reading to measure the next against.
func (s *CPUSampler) Has(name string) bool {
	_, ok := s.last[name]
	return ok
}

// Since returns when the replica's last reading was taken: a Sample now
// covers the window from then (metrics.k8s.io's window).
func (s *CPUSampler) Since(name string) (time.Time, bool) {
	r, ok := s.last[name]
	return r.at, ok
}

// Forget drops a replica's last reading (after a restart or deletion).
func (s *CPUSampler) Forget(name string) { delete(s.last, name) }
