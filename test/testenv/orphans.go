package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
)

// orphanGuard cleans up after this test binary if it dies without stopping what it started:
// a `go test -timeout` panic exits at once, and the servers would keep running, holding memory,
// and their directories would stay behind. It is a shell loop watching this process; it
// ignores SIGINT so that it survives a ^C to the whole process group and cleans up then too.
type orphanGuard struct {
	cmd *exec.Cmd
}

// guard runs the shell script cleanup, with args as $1..., once this process is gone.
func guard(cleanup string, args ...string) (*orphanGuard, error) {
	loop := `trap "" INT; owner=$1; shift; while kill -0 "$owner" 2>/dev/null; do sleep 1; done; ` + cleanup
	cmd := exec.Command("sh", append([]string{"-c", loop, "kudod-testenv-guard", strconv.Itoa(os.Getpid())}, args...)...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the guard that cleans up after this test binary: %w", err)
	}
	return &orphanGuard{cmd: cmd}, nil
}

// stop ends the guard: the caller is about to clean up itself.
func (g *orphanGuard) stop() {
	if g == nil {
		return
	}
	_ = g.cmd.Process.Kill()
	_ = g.cmd.Wait() // killed: its exit status says so and nothing more
}
