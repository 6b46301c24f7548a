package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/appv/appv/internal/sequencer"
)

type sequenceOptions struct {
	name, version, publisher string
	installer, fromDir, root string
	launch                   []string
	launchTimeout            time.Duration
	upgrade                  string
	outDir                   string
	showOutput               bool
}

func newSequenceCommand(g *globals) *cobra.Command {
	var o sequenceOptions
	cmd := &cobra.Command{
		Use:   "sequence --name NAME --version VER --installer 'CMD' [--launch 'CMD']... [--upgrade OLD.appv] -o OUTDIR",
		Short: "Capture an application's installation into an .appv package (root)",
		Long: `sequence runs an installer as root in an isolated mount namespace where /usr,
/opt, /etc, /var, /srv, /tmp and a fresh $HOME are overlays that record every
change; the host's files, package database and home are unchanged. The
installer runs in the current directory, visible read-only inside, so
'dpkg -i ./foo.deb' or 'make install' just work.

The changes become a package: the primary virtual application directory
(/opt/NAME, an /opt/<dir> the installer created, or --root), known folders as
VFS (Usr, Etc, XdgConfigHome, ...), deletions and opaque directories. Caches,
logs, /tmp and the package manager's databases are left out and listed in
Report.xml with warnings for what may not behave virtualized. Desktop
entries, MIME types, URL handlers and commands on PATH become the package's
applications and extension points. Each --launch command runs in a virtual
environment over the captured files; what it reads becomes the primary
feature block, so a first launch streams just that.

OUTDIR receives NAME.appv, NAME_DeploymentConfig.xml, NAME_UserConfig.xml
and Report.xml, all or nothing. --upgrade OLD.appv installs on top of the old
version: same PackageId, a new VersionId, its history continued, unchanged
files byte-identical. --from-dir DIR --root PATH packages a laid-out tree
instead of running an installer.`,
		Example: `  cd dist && sudo appv sequence --name Foo --version 1.0 --installer 'dpkg -i ./foo_1.0_amd64.deb' --launch 'foo --version' -o ../out
  sudo appv sequence --name Foo --version 1.1 --installer 'dpkg -i ./foo_1.1_amd64.deb' --upgrade ../out/Foo.appv -o ../out-1.1
  sudo appv sequence --name Tool --version 2.0 --installer 'make install PREFIX=/opt/tool' -o out`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSequence(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "package name (required)")
	f.StringVar(&o.version, "version", "", "package version, 1 to 4 numbers (required)")
	f.StringVar(&o.publisher, "publisher", "", "publisher as a distinguished name (default CN=appv, or the upgraded package's)")
	f.StringVar(&o.installer, "installer", "", "the installation command, run with /bin/sh -c as root")
	f.StringVar(&o.fromDir, "from-dir", "", "package this laid-out tree instead of running an installer")
	f.StringVar(&o.root, "root", "", "the primary virtual application directory (required with --from-dir)")
	f.StringArrayVar(&o.launch, "launch", nil, "a command that starts the application, to record what it reads (repeatable)")
	f.DurationVar(&o.launchTimeout, "launch-timeout", 30*time.Second, "how long each --launch command may run")
	f.StringVar(&o.upgrade, "upgrade", "", "the previous version's .appv, to make an upgrade of it")
	f.StringVarP(&o.outDir, "output", "o", "", "output directory (required)")
	f.BoolVar(&o.showOutput, "show-output", false, "show the installer's and launch commands' output as they run")
	return cmd
}

func runSequence(ctx context.Context, g *globals, o sequenceOptions) error {
	for _, req := range []struct{ flag, val string }{{"--name", o.name}, {"--version", o.version}, {"-o", o.outDir}} {
		if req.val == "" {
			return usagef("%s is required (see appv sequence --help)", req.flag)
		}
	}
	version, err := checkNameVersion(o.name, o.version)
	if err != nil {
		return err
	}
	if (o.installer == "") == (o.fromDir == "") {
		return usagef("give --installer CMD, or --from-dir DIR with --root PATH")
	}
	if o.fromDir != "" && o.root == "" {
		return usagef("--from-dir needs --root: where the tree appears at run time, e.g. /opt/%s", o.name)
	}
	if os.Geteuid() != 0 && o.fromDir == "" {
		return fmt.Errorf("sequencing runs the installer in its own mount namespace: run appv sequence as root")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	out := io.Discard
	if o.showOutput {
		out = g.stderr
	}
	start := time.Now()
	var bar *progress
	res, err := sequencer.Sequence(ctx, sequencer.Options{
		Name: o.name, Version: version, Publisher: o.publisher,
		Installer: o.installer, FromDir: o.fromDir, PackageRoot: o.root,
		Launch: o.launch, LaunchTimeout: o.launchTimeout, Upgrade: o.upgrade,
		OutDir: o.outDir, Exe: exe, ExeArgs: []string{venvSupervisorVerb},
		Stdout: out, Stderr: out,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Phase: func(n, of int, what string) {
			if !g.quiet {
				fmt.Fprintf(g.stderr, "[%d/%d %5.1fs] %s\n", n, of, time.Since(start).Seconds(), what)
			}
		},
		Progress: func(done, total int64) {
			if bar == nil {
				bar = newProgress(g, total, "packaging")
			}
			bar.set(done, total)
		},
	})
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		var ie *sequencer.InstallerError
		if errors.As(err, &ie) {
			return fmt.Errorf("%w\nfix the installer (--show-output shows all its output as it runs) and sequence again", err)
		}
		return err
	}
	if !g.quiet {
		fmt.Fprintf(g.stdout, "%s: %s %s, %d files, %s, package root %s, PackageId %s, VersionId %s\n",
			res.Package, res.Identity.Name, res.Identity.Version, res.Files, humanBytes(res.PackageSize),
			res.PackageRoot, res.Identity.PackageID, res.Identity.VersionID)
		fmt.Fprintf(g.stdout, "primary feature block: %d blocks; report: %s\n%s\n", res.PrimaryBlocks, filepath.Base(res.ReportFile), res.Report.Summary())
	}
	return nil
}
