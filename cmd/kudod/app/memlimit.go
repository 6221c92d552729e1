package app

import (
	"bytes"
	"errors"
	"io/fs"
	"strconv"
)

// memoryLimitShare is the part of the container's memory limit that kudod gives the Go
// runtime as its soft limit (runtime/debug.SetMemoryLimit): the collector works harder as the
// heap nears it instead of letting the kernel kill the pod, and the rest is headroom for what
// the limit does not steer (docs/scaling.md, "Memory").
const memoryLimitShare = 0.9

// unlimitedMemory is at or above what cgroup v1 reports when no limit is set (the largest
// page-aligned int64).
const unlimitedMemory = 1 << 62

// cgroupMemoryLimit reads the memory limit of the container kudod runs in from the cgroup
// file system (/sys/fs/cgroup): memory.max with cgroup v2, memory/memory.limit_in_bytes with
// v1. ok is false without a limit or outside a container.
func cgroupMemoryLimit(cgroup fs.FS) (limit int64, file string, ok bool) {
	for _, f := range []string{"memory.max", "memory/memory.limit_in_bytes"} {
		data, err := fs.ReadFile(cgroup, f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, f, false
		}
		v := string(bytes.TrimSpace(data))
		if v == "max" {
			return 0, f, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= unlimitedMemory {
			return 0, f, false
		}
		return n, f, true
	}
	return 0, "", false
}

// goMemoryLimit is the Go runtime's soft limit for a container limit.
func goMemoryLimit(container int64) int64 {
	return int64(float64(container) * memoryLimitShare)
}
