package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/kudod-dev/kudod/internal/mask"
	"github.com/kudod-dev/kudod/internal/ui"
)

func newUICommand(s streams) *cobra.Command {
	var (
		kf       kubeFlags
		port     int
		open     bool
		daemonNS string
	)
	cmd := &cobra.Command{
		Use:   "ui [--port 8090] [--open]",
		Short: "Serve a read-only web UI of the instances' plans on 127.0.0.1, with your kubeconfig",
		Long: `Serve a read-only web UI of kudod's instances, plans, objects and repositories on
127.0.0.1. It reads the cluster with your kubeconfig (it sees what you may see) and never
writes to it: actions are kudod commands to copy. Pages follow the cluster live.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if port < 0 || port > 65535 {
				return exitCode(2, fmt.Errorf("--port %d: not a port", port))
			}
			log, err := newLogger(s, "info", "text", mask.New())
			if err != nil {
				return exitCode(2, err)
			}
			cfg, err := kf.restConfig()
			if err != nil {
				return exitCode(2, err)
			}
			c, err := ui.NewClient(cfg, version)
			if err != nil {
				return exitCode(2, err)
			}
			cluster := kf.context
			if cluster == "" {
				if raw, err := kf.loader().RawConfig(); err == nil {
					cluster = raw.CurrentContext
				}
			}
			if cluster == "" {
				cluster = cfg.Host
			}
			var flags []string
			if kf.kubeconfig != "" {
				flags = append(flags, "--kubeconfig", kf.kubeconfig)
			}
			if kf.context != "" {
				flags = append(flags, "--context", kf.context)
			}
			root := cmd.Root()
			srv, err := ui.New(ui.Options{
				Client: c, Namespace: kf.namespace, DaemonNamespace: daemonNS, Cluster: cluster, Version: version,
				CommandFlags: flags,
				HasCommand: func(name string) bool {
					found, _, err := root.Find([]string{name})
					return err == nil && found != root
				},
				Log: log,
			})
			if err != nil {
				return exitCode(2, err)
			}
			// Loopback only: the UI carries the user's cluster rights.
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				return exitCode(2, fmt.Errorf("listen on 127.0.0.1:%d: %w (choose another with --port)", port, err))
			}
			url := "http://" + l.Addr().String() + "/"
			fmt.Fprintf(s.Out, "kudod ui: %s (read-only, cluster %s; Ctrl-C stops it)\n", url, cluster)
			if open {
				openBrowser(s, url)
			}
			return serveUntilDone(cmd.Context(), l, srv)
		},
	}
	kf.add(cmd.Flags(), true)
	cmd.Flags().Lookup("namespace").Usage = "show only this namespace (default: every namespace your kubeconfig may list)"
	cmd.Flags().IntVar(&port, "port", 8090, "the port on 127.0.0.1 to serve on (0: any free port)")
	cmd.Flags().BoolVar(&open, "open", false, "open the UI in a web browser")
	cmd.Flags().StringVar(&daemonNS, "daemon-namespace", defaultDaemonNamespace, "the daemon's namespace (its --leader-election-namespace), where the repositories' status is")
	return cmd
}

// serveUntilDone serves until ctx ends (Ctrl-C), then closes open pages' streams.
func serveUntilDone(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return exitCode(2, fmt.Errorf("serve: %w", err))
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Event streams never end by themselves: Shutdown waits for them only briefly.
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return exitCode(2, err)
	}
	_ = srv.Close()
	return nil
}

// openBrowser opens url in the desktop's browser; without one it says so and carries on.
func openBrowser(s streams, url string) {
	name, args := "xdg-open", []string{url}
	if runtime.GOOS == "darwin" {
		name = "open"
	}
	if b := os.Getenv("BROWSER"); b != "" {
		name = b
	}
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(s.Err, "kudod ui: cannot open a browser (%v): open %s yourself\n", err, url)
		return
	}
	go func() {
		if err := cmd.Wait(); err != nil {
			fmt.Fprintf(s.Err, "kudod ui: %s could not open a browser (%v): open %s yourself\n", name, err, url)
		}
	}()
}
