package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/appv/appv/internal/client"
	"github.com/appv/appv/internal/config"
	"github.com/appv/appv/internal/events"
	"github.com/appv/appv/internal/venv"
)

// Exit codes of the client verbs, beyond those in main.go (docs/cli.md).
const (
	exitDenied    = 4
	exitNotFound  = 5
	exitConflict  = 6
	exitNoService = 7
)

// call runs one request against the service, drawing progress.
func call(ctx context.Context, g *globals, req client.Request, out any) error {
	var bar *progress
	defer func() {
		if bar != nil {
			bar.finish()
		}
	}()
	return callProgress(ctx, req, func(p client.Progress) {
		if bar == nil {
			bar = newProgress(g, p.Total, p.What)
		}
		bar.set(p.Done, p.Total)
	}, out)
}

// callProgress runs one request against the service, passing its progress
// reports to progress.
func callProgress(ctx context.Context, req client.Request, progress func(client.Progress), out any) error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	req.DataHome, req.CacheHome = os.Getenv("XDG_DATA_HOME"), os.Getenv("XDG_CACHE_HOME")
	conn, err := client.Dial(ctx, cfg.Socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Call(req, progress, out)
}

func clientExitCode(err error) (int, bool) {
	var ce *client.Error
	switch {
	case errors.Is(err, client.ErrNoService):
		return exitNoService, true
	case errors.As(err, &ce):
		switch ce.Kind {
		case client.KindUsage:
			return exitUsage, true
		case client.KindDenied:
			return exitDenied, true
		case client.KindNotFound:
			return exitNotFound, true
		case client.KindBadPackage:
			return exitBadInput, true
		case client.KindConflict:
			return exitConflict, true
		}
		return exitError, true
	}
	return 0, false
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func simpleVerb(g *globals, use, short, long, example, verb string, args cobra.PositionalArgs, build func(args []string) client.Request) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use: use, Short: short, Long: long, Example: example, Args: args,
		RunE: func(cmd *cobra.Command, args []string) error {
			req := build(args)
			req.Verb = verb
			var info client.PackageInfo
			if err := call(cmd.Context(), g, req, &info); err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, info)
			}
			if !g.quiet {
				fmt.Fprintf(g.stdout, "%s %s (%s): %sed\n", info.Name, info.Version, info.VersionID, verb)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the package as JSON")
	return cmd
}

func newClientCommands(g *globals) []*cobra.Command {
	var global bool
	add := newAddCommand(g)
	publish := simpleVerb(g, "publish PKG", "Publish a package to you, or to every user with --global",
		`publish entitles you (or, with --global and root, every user of the machine)
to launch the package's applications, and integrates its extension points:
app paths become commands in ~/.local/bin (or /usr/local/bin). Anything they
replace is backed up and restored on unpublish. PKG is the package's name,
PackageId or VersionId.`,
		"  appv publish Hello\n  sudo appv publish --global Hello",
		client.VerbPublish, exactArgs(1, "PKG"), func(a []string) client.Request {
			return client.Request{Package: a[0], Global: global}
		})
	publish.Flags().BoolVar(&global, "global", false, "publish to every user of the machine (root)")
	var uglobal bool
	unpublish := simpleVerb(g, "unpublish PKG", "Unpublish a package; its store copy and your settings stay",
		`unpublish removes the package's catalog entries and extension points for you
(or for the machine with --global), restoring what they replaced. The
package stays in the store and your copy-on-write state stays, so publishing
again brings everything back.`,
		"  appv unpublish Hello",
		client.VerbUnpublish, exactArgs(1, "PKG"), func(a []string) client.Request {
			return client.Request{Package: a[0], Global: uglobal}
		})
	unpublish.Flags().BoolVar(&uglobal, "global", false, "unpublish from the machine (root)")

	remove := &cobra.Command{
		Use: "remove PKG", Short: "Remove a package's store copy from this machine (root)",
		Long:    "remove deletes the package from the package store and the machine catalog. It refuses while the package runs.",
		Example: "  sudo appv remove Hello", Args: exactArgs(1, "PKG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), g, client.Request{Verb: client.VerbRemove, Package: args[0]}, nil)
		},
	}
	var cancel bool
	mount := &cobra.Command{
		Use: "mount PKG", Short: "Load a whole package into the store (resumable)",
		Long: `mount fetches every block of the package that is not yet local, verified,
with a progress bar. It resumes where an interrupted mount stopped;
--cancel stops a mount that is running.`,
		Example: "  appv mount Hello\n  appv mount --cancel Hello", Args: exactArgs(1, "PKG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var info client.PackageInfo
			if err := call(cmd.Context(), g, client.Request{Verb: client.VerbMount, Package: args[0], Cancel: cancel}, &info); err != nil {
				return err
			}
			if !g.quiet && !cancel {
				fmt.Fprintf(g.stdout, "%s %s: %.0f%% loaded\n", info.Name, info.Version, info.PercentLoaded)
			}
			return nil
		},
	}
	mount.Flags().BoolVar(&cancel, "cancel", false, "stop a running mount")
	var userState, extensions bool
	repair := &cobra.Command{
		Use: "repair PKG", Short: "Reset your state of a package: settings and extension points",
		Long: `repair removes your copy-on-write state of the package (what the application
wrote: settings, caches) and re-integrates its extension points. With
--user-state or --extensions only that part is repaired.`,
		Example: "  appv repair Hello\n  appv repair --extensions Hello", Args: exactArgs(1, "PKG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), g, client.Request{Verb: client.VerbRepair, Package: args[0], UserState: userState, Extensions: extensions}, nil)
		},
	}
	repair.Flags().BoolVar(&userState, "user-state", false, "only clear your copy-on-write state")
	repair.Flags().BoolVar(&extensions, "extensions", false, "only re-integrate extension points")
	stop := &cobra.Command{
		Use: "stop PKG", Short: "Stop the package's running applications (yours; everyone's as root)",
		Example: "  appv stop Hello", Args: exactArgs(1, "PKG"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), g, client.Request{Verb: client.VerbStop, Package: args[0]}, nil)
		},
	}
	var listJSON bool
	list := &cobra.Command{
		Use: "list", Short: "List the packages on this machine",
		Long: `list shows every package in the store, whether it is published to you, how much
is loaded, whether it runs, and its applications; below the table, what your
publishing servers list, the connection groups they put packages in, and the
switches that wait for a package's last process to exit.`,
		Example: "  appv list\n  appv list --json | jq -r '.[].name'", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var pkgs []client.PackageInfo
			if err := call(cmd.Context(), g, client.Request{Verb: client.VerbList}, &pkgs); err != nil {
				return err
			}
			if listJSON {
				return printJSON(g.stdout, pkgs)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tPUBLISHED\tLOADED\tIN USE\tAPPLICATIONS\tVERSION ID")
			for _, p := range pkgs {
				pub := "no"
				if p.Global {
					pub = "global"
				} else if p.Published {
					pub = "you"
				}
				var apps []string
				for _, a := range p.Apps {
					n := a.Name
					if a.Command != "" {
						n = a.Command
					}
					apps = append(apps, n)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f%%\t%v\t%s\t%s\n", p.Name, p.Version, pub, p.PercentLoaded, p.InUse, strings.Join(apps, ","), p.VersionID)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			printListNotes(g, pkgs)
			return nil
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	return []*cobra.Command{add, publish, unpublish, remove, mount, repair, stop, list, newLaunchCommand(g), newEventsCommand(g),
		newPublishingServerCommand(g), newSyncCommand(g)}
}

func newLaunchCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "launch APP [-- ARGS...]",
		Short: "Run an application in its virtual environment",
		Long: `launch runs an application of a package published to you, in the package's
virtual environment: its files appear at their installed paths, what it
reads streams on demand, what it writes lands in your copy-on-write area.
APP is the application's id, its command name (app path), or its name.
Standard input, output, error and the terminal pass through; appv exits
with the application's exit code.`,
		Example: "  appv launch hello\n  appv launch lua5.4 -- -e 'print(42)'\n  echo data | appv launch filter > out.txt",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return usagef("launch takes APP [-- ARGS...]; appv list shows the applications published to you")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := runLaunch(cmd.Context(), g, args[0], args[1:])
			if err != nil {
				return err
			}
			return exitWith(code)
		},
	}
}

// exitWith carries a program's exit code out through cobra.
type exitWith int

func (e exitWith) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func runLaunch(ctx context.Context, g *globals, app string, args []string) (int, error) {
	cfg, err := config.Load()
	if err != nil {
		return 0, err
	}
	conn, err := client.Dial(ctx, cfg.Socket)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	wd, _ := os.Getwd()
	req := client.Request{Verb: client.VerbLaunch, App: app, Argv: args, Env: os.Environ(), Dir: wd,
		DataHome: os.Getenv("XDG_DATA_HOME"), CacheHome: os.Getenv("XDG_CACHE_HOME")}
	tty := term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
	var files []*os.File
	if tty {
		req.TTY = true
		if ws, err := unix.IoctlGetWinsize(int(os.Stdout.Fd()), unix.TIOCGWINSZ); err == nil {
			req.Rows, req.Cols = ws.Row, ws.Col
		}
	} else {
		files = []*os.File{os.Stdin, os.Stdout, os.Stderr}
	}
	if err := conn.Send(req, files...); err != nil {
		return 0, err
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGWINCH)
	defer signal.Stop(sigs)
	var master *os.File
	var restore func()
	defer func() {
		if restore != nil {
			restore()
		}
	}()
	go func() {
		for s := range sigs {
			sig := s.(syscall.Signal)
			if sig == syscall.SIGWINCH {
				if master != nil {
					if ws, err := unix.IoctlGetWinsize(int(os.Stdout.Fd()), unix.TIOCGWINSZ); err == nil {
						_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
					}
				}
				continue
			}
			_ = conn.SendSignal(client.Signal{Signal: int(sig)})
		}
	}()
	for {
		r, got, err := conn.Next()
		if err != nil {
			return 0, err
		}
		switch {
		case r.Error != nil:
			for _, f := range got {
				f.Close()
			}
			return 0, r.Error
		case r.Started != nil:
			if tty && len(got) == 1 {
				master = got[0]
				if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
					restore = func() { _ = term.Restore(int(os.Stdin.Fd()), st) }
				}
				go func() { _, _ = io.Copy(master, os.Stdin) }()
				go func() { _, _ = io.Copy(os.Stdout, master) }()
			}
		case r.Exit != nil:
			if master != nil {
				// Let the last output drain before the terminal is restored.
				time.Sleep(50 * time.Millisecond)
			}
			return *r.Exit, nil
		}
	}
}

func newEventsCommand(g *globals) *cobra.Command {
	var channel string
	var since time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the client's events (Admin, Operational, VirtualApplication)",
		Long: `events prints the client's event log: configuration changes and errors
(Admin), completed operations such as add and publish (Operational), and
application launches (VirtualApplication). Users see machine events and
their own; root sees all.`,
		Example: "  appv events --channel Operational --since 1h\n  appv events --json | jq 'select(.level==\"ERROR\")'",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch channel {
			case "", events.Admin, events.Operational, events.VirtualApplication:
			default:
				return usagef("--channel %q: use Admin, Operational or VirtualApplication", channel)
			}
			req := client.Request{Verb: client.VerbEvents, Channel: channel}
			if since > 0 {
				req.Since = time.Now().Add(-since)
			}
			var recs []events.Record
			if err := call(cmd.Context(), g, req, &recs); err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, recs)
			}
			for _, r := range recs {
				var kv []string
				for k, v := range r.Attrs {
					kv = append(kv, fmt.Sprintf("%s=%v", k, v))
				}
				sort.Strings(kv)
				fmt.Fprintf(g.stdout, "%s %-5s %-18s %s %s\n", r.Time.Local().Format("2006-01-02 15:04:05"), r.Level, r.Channel, r.Message, strings.Join(kv, " "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&channel, "channel", "", "only this channel: Admin, Operational or VirtualApplication")
	cmd.Flags().DurationVar(&since, "since", 0, "only events newer than this, e.g. 30m or 24h")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newClientAdminCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "client",
		Short:   "Run and configure the client service",
		Example: "  appv client service\n  appv client config get AutoLoad\n  sudo appv client config set AutoLoad 2",
	}
	service := &cobra.Command{
		Use:   "service",
		Short: "Run the client service (as root; systemd runs it from dist/appv-client.service)",
		Long: `service runs the client service in the foreground: it owns the package store,
mounts the streaming filesystem and runs the virtual environments, and
answers the appv command on its Unix socket. Paths come from the
configuration (appv client config get) and APPV_* environment variables.`,
		Example: "  sudo appv client service\n  sudo APPV_STATEDIR=/tmp/appv APPV_RUNDIR=/tmp/appv-run appv client service",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runClientService(cmd.Context(), g)
		},
	}
	var asJSON bool
	get := &cobra.Command{
		Use: "get [KEY]", Short: "Show the client configuration",
		Example: "  appv client config get\n  appv client config get PackageSourceRoot",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("get takes at most one KEY")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			req := client.Request{Verb: client.VerbConfigGet}
			if len(args) == 1 {
				req.Key = args[0]
			}
			var vals map[string]string
			if err := call(cmd.Context(), g, req, &vals); err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, vals)
			}
			keys := make([]string, 0, len(vals))
			for k := range vals {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(g.stdout, "%s = %s\n", k, vals[k])
			}
			return nil
		},
	}
	get.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	set := &cobra.Command{
		Use: "set KEY VALUE", Short: "Change a client setting (root)",
		Long: `set changes a client setting and saves it in the configuration file. Settings:
PackageInstallationRoot, PackageSourceRoot, AutoLoad (0 none, 1 previously
used, 2 all), SharedContentStoreMode, EnablePackageScripts,
RequirePublishAsAdmin, and appv's paths (StateDir, RunDir, Socket, MountDir,
GlobalBinDir).`,
		Example: "  sudo appv client config set PackageSourceRoot http://mirror.example.com:8080\n  sudo appv client config set AutoLoad 2",
		Args:    exactArgs(2, "KEY VALUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res map[string]string
			if err := call(cmd.Context(), g, client.Request{Verb: client.VerbConfigSet, Key: args[0], Value: args[1]}, &res); err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(g.stdout, "%s = %s (%s)\n", res["key"], res["value"], res["status"])
			}
			return nil
		},
	}
	config := &cobra.Command{Use: "config", Short: "Get or set client settings", Example: "  appv client config get AutoLoad"}
	config.AddCommand(get, set)
	cmd.AddCommand(service, config)
	return cmd
}

func runClientService(ctx context.Context, g *globals) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the client service mounts filesystems and creates namespaces: run it as root")
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	svc, err := client.NewService(ctx, client.ServiceOptions{
		Config: cfg, Exe: exe, SupervisorArgs: []string{venvSupervisorVerb},
		Stderr: slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, "appv client service: listening on %s, streaming filesystem at %s\n", cfg.Socket, cfg.MountDir)
	err = svc.Serve(ctx)
	return errors.Join(err, svc.Close())
}

// venvSupervisorVerb is the hidden verb a virtual environment's supervisor
// runs as.
const venvSupervisorVerb = "__venv-supervisor"

func newSupervisorCommand() *cobra.Command {
	return &cobra.Command{
		Use:                venvSupervisorVerb,
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			return exitWith(venv.SupervisorMain(args))
		},
	}
}
