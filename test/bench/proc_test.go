package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// usage is a process's CPU time and peak memory, from /proc.
type usage struct {
	cpu time.Duration
	// peakRSS is VmHWM, the resident set's high-water mark, in bytes.
	peakRSS int64
	// rss is VmRSS now, in bytes.
	rss int64
}

// userHZ is the unit of /proc/<pid>/stat's times: USER_HZ, 100 on every Linux architecture
// (the kernel ABI fixes it, whatever CONFIG_HZ is).
const userHZ = 100

// processUsage reads a process's CPU time (utime+stime) and memory.
func processUsage(pid int) (usage, error) {
	var u usage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// The command name (field 2) may hold spaces: fields are counted after its ')'.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return u, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(stat[end+1:]))
	if len(f) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// Fields 14 and 15 of proc(5): utime and stime; f[0] is field 3.
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return u, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	u.cpu = time.Duration(ticks) * time.Second / userHZ
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for line := range strings.Lines(string(status)) {
		key, value, ok := strings.Cut(line, ":")
		if !ok || (key != "VmHWM" && key != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return u, fmt.Errorf("/proc/%d/status: %s: %w", pid, key, err)
		}
		if key == "VmHWM" {
			u.peakRSS = kb * 1024
		} else {
			u.rss = kb * 1024
		}
	}
	if u.peakRSS == 0 {
		return u, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
	}
	return u, nil
}

// machineMeter measures how busy all cores are over a window, from /proc/stat.
type machineMeter struct{ busy0, total0 time.Duration }

func startMachineMeter() (machineMeter, error) {
	busy, total, err := machineTimes()
	return machineMeter{busy0: busy, total0: total}, err
}

// busy is the fraction of all cores' time since the start that was busy (not idle, not
// waiting for I/O): near 1, the machine itself was the limit.
func (m machineMeter) busy() (float64, error) {
	busy, total, err := machineTimes()
	if err != nil {
		return 0, err
	}
	if total == m.total0 {
		return 0, errors.New("/proc/stat: no time passed")
	}
	return float64(busy-m.busy0) / float64(total-m.total0), nil
}

// machineTimes reads the CPU time all cores spent busy since boot, and in all.
func machineTimes() (busy, total time.Duration, err error) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var idle time.Duration
	// user nice system idle iowait irq softirq steal; guest time, after them, is in user's.
	for i, s := range f[1:9] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		d := time.Duration(n) * time.Second / userHZ
		total += d
		if i == 3 || i == 4 { // idle, iowait
			idle += d
		}
	}
	return total - idle, total, nil
}
