package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/appv/appv/internal/appvpkg"
)

func newPackageVerifyCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify FILE.appv",
		Short: "Check every block of every file against the block map",
		Long: `verify reads every block of every file in the package, inflates it and checks
it against its hash in AppxBlockMap.xml, and checks the ZIP structure, the
content types and each local header. It exits 0 only if all is sound;
otherwise it prints the part and the rule that failed and exits 3.`,
		Example: `  appv package verify hello.appv && echo sound`,
		Args:    exactArgs(1, "FILE.appv"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPackageVerify(cmd.Context(), g, args[0])
		},
	}
}

func runPackageVerify(ctx context.Context, g *globals, file string) error {
	p, err := appvpkg.OpenFile(file)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	defer p.Close()
	bar := newProgress(g, 0, "verifying")
	err = p.Verify(ctx, appvpkg.VerifyOptions{Progress: bar.set})
	bar.finish()
	if err != nil {
		return fmt.Errorf("%s: %w\nThe package is damaged or was altered: fetch or rebuild it, and do not deploy this copy", file, err)
	}
	if !g.quiet {
		fmt.Fprintf(g.stdout, "%s: ok, %d files verified\n", file, len(p.Files()))
	}
	return nil
}

func newPackageExtractCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "extract FILE.appv DIR",
		Short: "Write the package's files into DIR, verified, never outside it",
		Long: `extract writes every file of the package into DIR under the package's own
layout (Root/..., AppxManifest.xml, ...), each block verified before it is
written, then applies the recorded Linux file semantics: modes, symlinks,
empty directories and modification times. Nothing is ever written outside
DIR, whatever the names or symlinks in the package or already in DIR.`,
		Example: `  appv package extract hello.appv ./out && ls out/Root`,
		Args:    exactArgs(2, "FILE.appv DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPackageExtract(cmd.Context(), g, args[0], args[1])
		},
	}
}

func runPackageExtract(ctx context.Context, g *globals, file, dir string) error {
	p, err := appvpkg.OpenFile(file)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	defer p.Close()
	bar := newProgress(g, 0, "extracting")
	err = p.Extract(ctx, dir, appvpkg.ExtractOptions{Progress: bar.set})
	bar.finish()
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// exactArgs is cobra.ExactArgs with a message that names the arguments and
// is classed as a usage error.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %s (got %d arguments); see appv %s --help", cmd.Name(), names, len(args), cmd.CommandPath()[len("appv "):])
		}
		return nil
	}
}
