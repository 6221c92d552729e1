package forge_test

import (
	"context"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kudod-dev/kudod/internal/config"
	"github.com/kudod-dev/kudod/internal/forge"
)

// How the daemon wires the package: one reporter for all repositories, one webhook handler.
func Example() {
	ctx := context.Background()
	log := logr.Discard()
	registry := prometheus.NewRegistry() // the daemon: controller-runtime's metrics.Registry
	cfg := &config.Config{}              // config.Load("kudod.yaml")
	wake := func(repository string) {}   // the daemon's Wake: poll now

	providers := map[string]forge.Provider{}
	secrets := map[string]string{}
	for _, repo := range cfg.Repositories {
		if repo.Status.Provider != "" {
			p, err := forge.NewProvider(repo.Status, forge.Options{})
			if err != nil {
				panic(err)
			}
			providers[repo.Name] = p
		}
		if repo.Webhook.SecretFile != "" {
			secrets[repo.Name] = repo.Webhook.SecretFile
		}
	}
	reporter, err := forge.NewReporter(forge.ReporterOptions{Providers: providers, Registerer: registry, Logger: log})
	if err != nil {
		panic(err)
	}
	go func() { _ = reporter.Start(ctx) }() // or mgr.Add(reporter)

	hook, err := forge.NewWebhook(forge.WebhookOptions{SecretFiles: secrets, OnPush: wake, OnPullRequest: wake, Registerer: registry, Logger: log})
	if err != nil {
		panic(err)
	}
	// The handler answers wrong methods and paths itself (and counts them): mount it on the
	// bare prefix.
	mux := http.NewServeMux()
	mux.Handle(forge.WebhookPathPrefix, hook)
	server := &http.Server{Addr: ":9292", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = server.ListenAndServe() }()

	// From plan execution: returns at once.
	reporter.Report(forge.Status{Repository: "platform", SHA: "…", Context: "kudod/kafka/zk", State: forge.StatePending, Description: "deploy plan IN_PROGRESS"})
}
