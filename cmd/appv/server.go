package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/appv/appv/internal/server"
	"github.com/appv/appv/internal/serverdb"
)

// Defaults of appv server (docs/server.md).
const (
	defaultListen    = "127.0.0.1:8480"
	defaultServerURL = "http://" + defaultListen
	defaultDataDir   = "/var/lib/appv-server"
)

type serverOptions struct {
	listen, data, db  string
	newAdminToken     bool
	tlsCert, tlsKey   string
	logLevel          slog.Level
	shutdownDeadline  time.Duration
	readHeaderTimeout time.Duration
}

func newServerCommand(g *globals) *cobra.Command {
	o := serverOptions{shutdownDeadline: 10 * time.Second, readHeaderTimeout: 10 * time.Second}
	cmd := &cobra.Command{
		Use:   "server [--listen ADDR] [--data DIR] [--db URL] [--tls-cert FILE --tls-key FILE]",
		Short: "Serve the management API, App-V publishing and package content",
		Long: `server runs appv's server in the foreground: the management API that
appv admin calls, App-V's publishing endpoint that clients refresh from
(GET /), and the content of uploaded packages, all behind bearer tokens.

State is in --db, by default a SQLite file in --data; uploaded packages are
in --data/content. Several servers may share one PostgreSQL database and
one data directory. On first start the server creates the user "admin" and
an admin token, writes it to --data/admin.token (mode 0600) and says so.
It prints the URL it listens on, and stops cleanly on SIGINT or SIGTERM.
docs/server.md describes it all.`,
		Example: `  sudo appv server
  appv server --listen 127.0.0.1:0 --data /tmp/appv-server
  sudo appv server --new-admin-token      # lost the admin token: make a new one
  appv server --listen :8443 --db postgres://appv@db.example/appv --tls-cert cert.pem --tls-key key.pem`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", defaultListen, "address to listen on (port 0: any free port)")
	f.StringVar(&o.data, "data", defaultDataDir, "data directory: admin.token, content/, and the SQLite database")
	f.StringVar(&o.db, "db", "", "database URL: sqlite:///PATH or postgres://… (default: sqlite in --data)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM; with --tls-key)")
	f.StringVar(&o.tlsKey, "tls-key", "", "the certificate's private key (PEM)")
	f.BoolVar(&o.newAdminToken, "new-admin-token", false, "give the admin user a new admin token in DATA/admin.token (when the old one is lost), then serve")
	f.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	return cmd
}

func runServer(ctx context.Context, g *globals, o serverOptions) error {
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	var tlsConfig *tls.Config
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return fmt.Errorf("loading the TLS certificate: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	data, err := filepath.Abs(o.data)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(data, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	dbURL := o.db
	if dbURL == "" {
		dbURL = "sqlite://" + filepath.Join(data, "appv.db")
	}
	log := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: o.logLevel}))
	db, err := serverdb.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	srv, err := server.New(ctx, server.Options{DB: db, DataDir: data, Logger: log})
	if err != nil {
		return err
	}
	defer srv.Close()
	tokenPath, created, err := srv.Bootstrap(ctx)
	if err != nil {
		return err
	}
	if o.newAdminToken && !created {
		if tokenPath, err = srv.NewAdminToken(ctx); err != nil {
			return err
		}
		created = true
	}
	switch _, statErr := os.Stat(tokenPath); {
	case created:
		fmt.Fprintf(g.stdout, "created admin token: %s\n", tokenPath)
	case statErr == nil:
		fmt.Fprintf(g.stdout, "admin token: %s\n", tokenPath)
	default:
		fmt.Fprintf(g.stdout, "admin token: none at %s (the admin user exists; use a token you keep elsewhere)\n", tokenPath)
	}

	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return usagef("--listen %s: %v", o.listen, err)
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: o.readHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			served <- hs.ServeTLS(l, "", "")
		} else {
			served <- hs.Serve(l)
		}
	}()
	fmt.Fprintf(g.stdout, "listening on %s://%s\n", scheme, l.Addr())
	log.Info("serving", "url", scheme+"://"+l.Addr().String(), "db", redactURL(dbURL), "data", data)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.shutdownDeadline)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// redactURL hides a password in a database URL.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}
