// Package e2e runs the kudod binary against real clusters (the simulated cluster of
// hack/local-cluster.sh: workloads become ready) and real git repositories, as a user would.
package e2e

import (
	"os"
	"testing"

	"github.com/kudod-dev/kudod/test/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
