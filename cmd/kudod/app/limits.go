package app

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kudod-dev/kudod/manifests"
)

// limitFlags are the bounds on what kudod reads and renders (docs/design.md, Limits), as flags
// of the commands that read packages or instance files.
type limitFlags struct {
	renderTimeout       time.Duration
	maxInstanceFileSize string
}

func (l *limitFlags) addRender(f *pflag.FlagSet) {
	f.DurationVar(&l.renderTimeout, "render-timeout", manifests.DefaultRenderTimeout, "how long one package render (a plan's templates, or a package's verification) may take")
}

func (l *limitFlags) addInstanceFiles(f *pflag.FlagSet) {
	f.StringVar(&l.maxInstanceFileSize, "max-instance-file-size", "512Ki", "the largest YAML file under a repository's path kudod reads (a Kubernetes quantity: 512Ki, 1Mi)")
}

// renderLimits are the render limits the flags set.
func (l *limitFlags) renderLimits() manifests.RenderLimits {
	return manifests.RenderLimits{Timeout: l.renderTimeout}
}

// context returns ctx with the flags' render limits.
func (l *limitFlags) context(ctx context.Context) context.Context {
	return manifests.WithRenderLimits(ctx, l.renderLimits())
}

// instanceFileSize parses --max-instance-file-size.
func (l *limitFlags) instanceFileSize() (int64, error) {
	if l.maxInstanceFileSize == "" {
		return manifests.DefaultMaxInstanceFileSize, nil
	}
	q, err := resource.ParseQuantity(l.maxInstanceFileSize)
	if err != nil || q.Sign() <= 0 {
		return 0, fmt.Errorf("--max-instance-file-size %q is not a positive size such as 512Ki", l.maxInstanceFileSize)
	}
	return q.Value(), nil
}
