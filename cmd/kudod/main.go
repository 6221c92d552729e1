// Command kudod is a GitOps daemon that runs KUDO operators' lifecycle plans from git.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // schedules name IANA time zones; images may lack a zone database

	"github.com/kudod-dev/kudod/cmd/kudod/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
