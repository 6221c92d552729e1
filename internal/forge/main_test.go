package forge

import (
	"os"
	"testing"

	"github.com/kudod-dev/kudod/test/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
