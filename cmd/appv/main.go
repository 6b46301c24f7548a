// Command appv sequences, serves, streams and runs virtual applications
// packaged in App-V's .appv format.
//
// This file holds the wiring: the root command, global flags and the mapping
// from errors to exit codes. Each verb lives in its own file and calls one
// run… function.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/appv/appv/internal/appvpkg"
)

// Exit codes scripts can rely on (docs/cli.md).
const (
	exitOK       = 0
	exitError    = 1 // anything else: I/O error, missing file, ...
	exitUsage    = 2 // bad flags or arguments
	exitBadInput = 3 // the package is malformed or fails verification
	exitCanceled = 130
)

// usageError marks errors in how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// globals are the options every verb sees.
type globals struct {
	quiet  bool
	stdout io.Writer
	stderr io.Writer
}

// interactive reports whether progress bars should be drawn: on a terminal,
// unless --quiet.
func (g *globals) interactive() bool {
	if g.quiet {
		return false
	}
	f, ok := g.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newRootCommand(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "appv",
		Short: "Application virtualization and streaming for Linux, compatible with App-V packages",
		Long: `appv sequences an application's installation into an .appv package, publishes
it to the users and machines entitled to it, and runs it in a virtual
environment that streams only the blocks the application reads.`,
		Example: `  appv package create --from-dir ./tree --name Hello --version 1.0.0.0 -o hello.appv
  sudo appv add ./hello.appv && appv publish Hello && appv launch hello`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().BoolVarP(&g.quiet, "quiet", "q", false, "no progress bars")
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newPackageCommand(g))
	root.AddCommand(newClientCommands(g)...)
	root.AddCommand(newClientAdminCommand(g), newSupervisorCommand(), newSequenceCommand(g))
	root.AddCommand(newServerCommand(g), newAdminCommand(g))
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globals{stdout: os.Stdout, stderr: os.Stderr}
	os.Exit(run(ctx, g, os.Args[1:]))
}

// run executes the command line and returns the exit code.
func run(ctx context.Context, g *globals, args []string) int {
	root := newRootCommand(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var code exitWith
	if errors.As(err, &code) {
		return int(code) // a launched program's exit code, already reported
	}
	fmt.Fprintln(g.stderr, "appv:", err)
	return exitCode(err)
}

func exitCode(err error) int {
	if code, ok := clientExitCode(err); ok {
		return code
	}
	var ue usageError
	switch {
	case errors.As(err, &ue), strings.HasPrefix(err.Error(), "unknown command "):
		// Cobra reports an unknown verb before any hook of ours runs.
		return exitUsage
	case errors.Is(err, context.Canceled):
		return exitCanceled
	case errors.Is(err, appvpkg.ErrFormat):
		return exitBadInput
	}
	return exitError
}
