package app

import (
	"testing"
	"testing/fstest"
)

func TestCgroupMemoryLimit(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  int64
		ok    bool
	}{
		{"cgroup v2 with a limit", map[string]string{"memory.max": "1073741824\n"}, 1 << 30, true},
		{"cgroup v2 without", map[string]string{"memory.max": "max\n"}, 0, false},
		{"cgroup v1 with a limit", map[string]string{"memory/memory.limit_in_bytes": "536870912\n"}, 512 << 20, true},
		{"cgroup v1 without", map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, false},
		{"not in a container", map[string]string{}, 0, false},
		{"garbage", map[string]string{"memory.max": "lots"}, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range c.files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			got, _, ok := cgroupMemoryLimit(fsys)
			if got != c.want || ok != c.ok {
				t.Errorf("got %d, %v; want %d, %v", got, ok, c.want, c.ok)
			}
		})
	}
	if got := goMemoryLimit(1 << 30); got != 966367641 {
		t.Errorf("goMemoryLimit(1 GiB) = %d, want 90%%", got)
	}
}
