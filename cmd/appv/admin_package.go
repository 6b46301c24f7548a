package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/appv/appv/internal/server/api"
)

func newAdminPackageCommand(g *globals, o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "package",
		Short:   "Import, list, show and remove the server's packages",
		Example: "  appv admin package import ./hello.appv\n  appv admin package list",
	}
	var (
		register bool
		entitle  []string
	)
	imp := &cobra.Command{
		Use:   "import FILE|URL [--register] [--entitle IDENTITY]...",
		Short: "Import a package: upload it, or register where it lives",
		Long: `import verifies a package (every block of every file) and records it on the
server. A local FILE is uploaded (with a progress bar) and the server serves
its content; with --register the server records the path instead, which
clients must see at the same place (a share). An http(s) URL is always
registered: clients stream from it, so it must honour Range requests. The
package must be new to the server (its PackageId unknown): a new version of
a package is added with add-version. --entitle entitles identities to it.`,
		Example: `  appv admin package import ./hello.appv --entitle group:staff
  appv admin package import https://cdn.example/apps/hello-1.0.appv
  appv admin package import --register /srv/share/hello.appv --entitle machine:kiosk-1`,
		Args: exactArgs(1, "FILE|URL"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			// Every identity to entitle must exist before anything is
			// imported, so a typo leaves the server as it was.
			for _, id := range entitle {
				if _, err := c.Identity(ctx, id); err != nil {
					var ae *api.Error
					if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
						return api.Errorf(http.StatusNotFound, "--entitle %s: %s; create it first (appv admin identity add KIND NAME); nothing was imported", id, ae.Message)
					}
					return err
				}
			}
			v, err := importVersion(ctx, g, c, "", args[0], register)
			if err != nil {
				return err
			}
			for _, id := range entitle {
				if err := c.Entitle(ctx, v.PackageID, id); err != nil {
					return err
				}
				if !g.quiet {
					fmt.Fprintf(g.stdout, "entitled %s\n", id)
				}
			}
			return nil
		}),
	}
	imp.Flags().BoolVar(&register, "register", false, "record FILE's path instead of uploading it")
	imp.Flags().StringArrayVar(&entitle, "entitle", nil, "entitle this identity (repeatable)")

	var vregister bool
	add := &cobra.Command{
		Use:   "add-version PACKAGE FILE|URL [--register]",
		Short: "Add a new version of a package (same PackageId, new VersionId)",
		Long: `add-version imports a new version of PACKAGE (its name or PackageId), as
import does. The new package must have PACKAGE's PackageId and a new
VersionId; clients upgrade to the highest version at their next refresh.`,
		Example: "  appv admin package add-version Hello ./hello-2.0.appv\n  appv admin package add-version Hello https://cdn.example/apps/hello-2.0.appv",
		Args:    exactArgs(2, "PACKAGE FILE|URL"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			_, err := importVersion(ctx, g, c, args[0], args[1], vregister)
			return err
		}),
	}
	add.Flags().BoolVar(&vregister, "register", false, "record FILE's path instead of uploading it")

	var listJSON bool
	list := &cobra.Command{
		Use: "list [--json]", Short: "List the packages and their latest versions",
		Example: "  appv admin package list\n  appv admin package list --json | jq -r '.[].name'",
		Args:    noArgs,
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, _ []string) error {
			pkgs, err := c.Packages(ctx)
			if err != nil || listJSON {
				return printIfJSON(g, listJSON, pkgs, err)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tVERSIONS\tPACKAGE ID\tCONTENT")
			for _, p := range pkgs {
				version, content := "-", "-"
				if len(p.Versions) > 0 {
					version, content = p.Versions[0].Version, p.Versions[0].URL
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", p.Name, version, len(p.Versions), p.PackageID, content)
			}
			return tw.Flush()
		}),
	}
	jsonFlag(list, &listJSON)

	var showJSON bool
	show := &cobra.Command{
		Use: "show PACKAGE [--json]", Short: "Show a package and its versions",
		Example: "  appv admin package show Hello\n  appv admin package show --json 8e2f…",
		Args:    exactArgs(1, "PACKAGE"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			p, err := c.Package(ctx, args[0])
			if err != nil || showJSON {
				return printIfJSON(g, showJSON, p, err)
			}
			fmt.Fprintf(g.stdout, "%s\nPackageId %s\n", p.Name, p.PackageID)
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tVERSION ID\tSIZE\tADDED\tCONTENT")
			for _, v := range p.Versions {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Version, v.VersionID, humanBytes(v.Size), localTime(v.AddedAt), v.URL)
			}
			return tw.Flush()
		}),
	}
	jsonFlag(show, &showJSON)

	remove := &cobra.Command{
		Use: "remove PACKAGE", Short: "Remove a package, its versions, entitlements and configuration",
		Long: `remove deletes the package from the server with every version (and the
uploaded content), its entitlements and its dynamic configuration. Clients
unpublish it at their next refresh. A package in a connection group cannot
be removed: remove it from the group first.`,
		Example: "  appv admin package remove Hello",
		Args:    exactArgs(1, "PACKAGE"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			return c.RemovePackage(ctx, args[0])
		}),
	}
	cmd.AddCommand(imp, add, list, show, remove)
	return cmd
}

func newAdminVersionCommand(g *globals, o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use: "version", Short: "Remove one version of a package",
		Example: "  appv admin version remove 0ec9…",
	}
	cmd.AddCommand(&cobra.Command{
		Use: "remove VERSIONID", Short: "Remove a version; the package and its other versions stay",
		Long: `remove deletes one version (and its uploaded content). Clients move to the
highest remaining version at their next refresh. A version a connection
group pins cannot be removed.`,
		Example: "  appv admin version remove 0ec9a3c4-…",
		Args:    exactArgs(1, "VERSIONID"),
		RunE: adminRun(g, o, func(ctx context.Context, c *api.Client, args []string) error {
			return c.RemoveVersion(ctx, args[0])
		}),
	})
	return cmd
}

// isURL reports whether an import argument is a URL to register.
func isURL(s string) bool {
	for _, p := range []string{"http://", "https://", "file://"} {
		if strings.HasPrefix(strings.ToLower(s), p) {
			return true
		}
	}
	return false
}

// importVersion uploads or registers src, as a new package (pkg "") or a
// new version of pkg, and says what was imported.
func importVersion(ctx context.Context, g *globals, c *api.Client, pkg, src string, register bool) (api.Version, error) {
	var (
		v   api.Version
		err error
	)
	switch {
	case isURL(src) || register:
		loc := src
		if !isURL(src) {
			if loc, err = filepath.Abs(src); err != nil {
				return v, err
			}
		}
		if pkg == "" {
			v, err = c.Register(ctx, loc)
		} else {
			v, err = c.RegisterVersion(ctx, pkg, loc)
		}
	default:
		var f *os.File
		if f, err = os.Open(src); err != nil {
			return v, err
		}
		defer f.Close()
		var info os.FileInfo
		if info, err = f.Stat(); err != nil {
			return v, err
		}
		bar := newProgress(g, info.Size(), "uploading")
		body := &progressReader{r: f, bar: bar, total: info.Size()}
		if pkg == "" {
			v, err = c.Import(ctx, body, info.Size())
		} else {
			v, err = c.AddVersion(ctx, pkg, body, info.Size())
		}
		bar.finish()
	}
	if err != nil {
		return v, err
	}
	if !g.quiet {
		how := "registered at " + v.URL
		if v.Uploaded {
			how = "uploaded, " + humanBytes(v.Size)
		}
		fmt.Fprintf(g.stdout, "imported %s %s (%s): PackageId %s, VersionId %s\n", v.Name, v.Version, how, v.PackageID, v.VersionID)
	}
	return v, nil
}

// progressReader reports what has been read to a progress bar.
type progressReader struct {
	r     io.Reader
	bar   *progress
	done  int64
	total int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	p.bar.set(p.done, p.total)
	return n, err
}

// printIfJSON prints v as JSON when asJSON and err is nil, and returns err.
func printIfJSON(g *globals, asJSON bool, v any, err error) error {
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(g.stdout, v)
	}
	return nil
}
