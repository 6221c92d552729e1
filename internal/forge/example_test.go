package forge_test

import (
	"context"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kudod-dev/kudod/internal/forge"
)

// How the daemon wires the package: one reporter for all repositories, one webhook handler.
func Example() {
	ctx := context.Background()
	log := logr.Discard()
	registry := prometheus.NewRegistry() // the daemon: controller-runtime's metrics.Registry
	wake := func(repository string) {}   // the daemon's Wake: poll now

	// kudod run reads these from kudod.yaml: repositories[].status and .webhook.
	p, err := forge.NewProvider(forge.Repository{Kind: forge.Gitea, URL: "https://git.example.com", TokenFile: "/etc/kudod/gitea-token", Owner: "ops", Repo: "platform"}, forge.Options{})
	if err != nil {
		panic(err)
	}
	providers := map[string]forge.Provider{"platform": p}
	secrets := map[string]string{"platform": "/etc/kudod/webhook-secret"}
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
