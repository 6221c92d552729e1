package app

import (
	"fmt"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kudod-dev/kudod/daemon"
	"github.com/kudod-dev/kudod/internal/config"
	"github.com/kudod-dev/kudod/internal/forge"
	"github.com/kudod-dev/kudod/internal/notify"
)

// addNotifier sets the daemon's history bound and, when kudod.yaml has notifications, its
// notifier (docs/recovery.md, History and Notifications).
func addNotifier(opts *daemon.Options, cfg *config.Config, historyLimit int, log logr.Logger) error {
	if historyLimit < 1 || historyLimit > 1000 {
		return fmt.Errorf("--history-limit %d: between 1 and 1000", historyLimit)
	}
	opts.HistoryLimit = historyLimit
	if len(cfg.Notifications) == 0 {
		return nil
	}
	n, err := notify.New(notify.Options{
		Notifications: cfg.NotifyTargets(),
		Poster:        forge.NewPoster(forge.Options{UserAgent: "kudod/" + version}),
		Registerer:    metrics.Registry,
		Logger:        log.WithName("notify"),
	})
	if err != nil {
		return err
	}
	opts.Notifier = n
	return nil
}
