package daemon

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	"github.com/kudod-dev/kudod/internal/forge"
	"github.com/kudod-dev/kudod/internal/mask"
	"github.com/kudod-dev/kudod/internal/preview"
)

// The daemon's outputs, each behind the Masker (docs/secrets.md): whatever a message quotes —
// a template's fail message, an API server's error — no event, commit status or comment shows
// a sensitive value. Logs go through mask.Handler, status messages through the Instance
// controller.

type maskedRecorder struct {
	events.EventRecorder
	m *mask.Masker
}

func (r maskedRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	r.EventRecorder.Eventf(regarding, related, eventtype, reason, action, "%s", r.m.Mask(fmt.Sprintf(note, args...)))
}

type maskedReporter struct {
	forge.StatusReporter
	m *mask.Masker
}

func (r maskedReporter) Report(s forge.Status) {
	s.Description = r.m.Mask(s.Description)
	r.StatusReporter.Report(s)
}

type maskedCommenter struct {
	preview.Commenter
	m *mask.Masker
}

func (c maskedCommenter) UpsertComment(ctx context.Context, number int, marker, body string) error {
	return c.Commenter.UpsertComment(ctx, number, marker, c.m.Mask(body))
}

func maskCommenters(in map[string]preview.Commenter, m *mask.Masker) map[string]preview.Commenter {
	out := make(map[string]preview.Commenter, len(in))
	for name, c := range in {
		out[name] = maskedCommenter{Commenter: c, m: m}
	}
	return out
}
