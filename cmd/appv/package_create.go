package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/appv/appv/internal/appvpkg"
)

type createOptions struct {
	fromDir      string
	name         string
	version      string
	root         string
	output       string
	publisher    string
	displayName  string
	packageID    string
	versionID    string
	apps         []string
	level        int
	skipSymlinks bool
}

func newPackageCreateCommand(g *globals) *cobra.Command {
	var o createOptions
	cmd := &cobra.Command{
		Use:   "create --from-dir DIR --name NAME --version VER -o FILE.appv",
		Short: "Package a directory tree into an .appv",
		Long: `create packages the tree under DIR as the primary virtual application
directory of a new package: DIR's files appear at --root (default /opt/NAME)
in the virtual environment. A top-level DIR/VFS/<Folder>/ holds files for
known folders instead (VFS/Usr, VFS/Etc, VFS/XdgConfigHome, ...; see
docs/format.md).

Every regular executable directly under DIR/bin becomes an application with
an app path (a command on PATH), unless --app names the applications.
The package gets new PackageId and VersionId GUIDs unless they are given.
Unix modes, symlinks (which must stay inside the package), empty directories
and modification times are recorded. The output is deterministic: the same
tree and options give the same bytes (set SOURCE_DATE_EPOCH to fix the
recorded build time; otherwise the newest file time is used).`,
		Example: `  appv package create --from-dir ./hello-1.0 --name Hello --version 1.0.0.0 -o Hello.appv
  appv package create --from-dir ./tree --name Tool --version 2.1 --root /opt/tool \
      --app bin/tool --package-id 3f2b... -o Tool.appv`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPackageCreate(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.fromDir, "from-dir", "", "the tree to package (required)")
	f.StringVar(&o.name, "name", "", "package name, e.g. Hello (required; letters, digits, '.' and '-')")
	f.StringVar(&o.version, "version", "", "package version, 1 to 4 numbers, e.g. 1.0.0.0 (required)")
	f.StringVar(&o.root, "root", "", "where the package root appears at run time (default /opt/NAME, lower case)")
	f.StringVarP(&o.output, "output", "o", "", "the .appv file to write (required)")
	f.StringVar(&o.publisher, "publisher", "CN=appv", "publisher, as a distinguished name")
	f.StringVar(&o.displayName, "display-name", "", "display name (default NAME)")
	f.StringVar(&o.packageID, "package-id", "", "PackageId GUID to keep across versions (default: a new one)")
	f.StringVar(&o.versionID, "version-id", "", "VersionId GUID (default: a new one)")
	f.StringArrayVar(&o.apps, "app", nil, "an application, as a path relative to DIR (repeatable; default: executables in DIR/bin)")
	f.IntVar(&o.level, "level", appvpkg.DefaultLevel, "deflate level 1 (fastest) to 9 (smallest)")
	f.BoolVar(&o.skipSymlinks, "skip-external-symlinks", false, "leave out symlinks that lead outside the package, instead of failing")
	return cmd
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,49}$`)

func runPackageCreate(ctx context.Context, g *globals, o createOptions) error {
	for _, req := range []struct{ flag, val, what string }{
		{"--from-dir", o.fromDir, "the tree to package"},
		{"--name", o.name, "the package name"},
		{"--version", o.version, "the package version"},
		{"-o", o.output, "the .appv file to write"},
	} {
		if req.val == "" {
			return usagef("%s is required: %s (see appv package create --help)", req.flag, req.what)
		}
	}
	version, err := checkNameVersion(o.name, o.version)
	if err != nil {
		return err
	}
	root := o.root
	if root == "" {
		root = "/opt/" + strings.ToLower(o.name)
	}
	if !path.IsAbs(root) || path.Clean(root) == "/" {
		return usagef("--root %q must be an absolute directory other than /", root)
	}
	id := appvpkg.Identity{Name: o.name, Publisher: o.publisher, Version: version, PackageID: appvpkg.NewGUID(), VersionID: appvpkg.NewGUID()}
	for _, g := range []struct {
		flag string
		val  string
		dst  *string
	}{{"--package-id", o.packageID, &id.PackageID}, {"--version-id", o.versionID, &id.VersionID}} {
		if g.val == "" {
			continue
		}
		v, err := appvpkg.ParseGUID(g.val)
		if err != nil {
			return usagef("%s: %v", g.flag, err)
		}
		*g.dst = v
	}
	m := appvpkg.NewManifest(id)
	if o.displayName != "" {
		props := m.Properties()
		props.DisplayName = o.displayName
		if err := m.SetProperties(props); err != nil {
			return usageError{err}
		}
	}
	apps := o.apps
	if len(apps) == 0 {
		if apps, err = defaultApps(o.fromDir); err != nil {
			return err
		}
	}
	for _, rel := range apps {
		if err := addApp(m, o.fromDir, rel); err != nil {
			return err
		}
	}

	// Write beside the target and rename at the end: an interrupted or failed
	// create leaves no half-written package under the output name.
	tmp, err := os.CreateTemp(filepath.Dir(o.output), "."+filepath.Base(o.output)+".partial-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", o.output, err)
	}
	defer os.Remove(tmp.Name())
	bar := newProgress(g, 0, "packaging")
	res, err := appvpkg.Create(ctx, tmp, appvpkg.CreateOptions{
		Dir: o.fromDir, PackageRoot: path.Clean(root), Manifest: m, Level: o.level,
		SkipExternalSymlinks: o.skipSymlinks, Progress: bar.set,
	})
	bar.finish()
	if err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", o.output, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), o.output); err != nil {
		return fmt.Errorf("cannot write %s: %w", o.output, err)
	}
	for _, s := range res.Skipped {
		fmt.Fprintln(g.stderr, "appv: skipped", s)
	}
	if !g.quiet {
		fmt.Fprintf(g.stdout, "%s: %s %s, %d files, %s -> %s (%.1f%%), PackageId %s, VersionId %s\n",
			o.output, id.Name, id.Version, res.Files, humanBytes(res.UncompressedSize), humanBytes(res.PackageSize),
			100*float64(res.PackageSize)/float64(max(res.UncompressedSize, 1)), id.PackageID, id.VersionID)
	}
	return nil
}

// checkNameVersion checks --name and returns --version in App-V's four-part
// form; its errors are usage errors.
func checkNameVersion(name, version string) (string, error) {
	if !nameRE.MatchString(name) {
		return "", usagef("--name %q: use 1 to 50 letters, digits, '.' and '-', starting with a letter or digit", name)
	}
	v, err := normalizeVersion(version)
	if err != nil {
		return "", usageError{err}
	}
	return v, nil
}

// normalizeVersion accepts 1 to 4 dot-separated numbers and pads to four, as
// App-V versions have.
func normalizeVersion(v string) (string, error) {
	parts := strings.Split(v, ".")
	if v == "" || len(parts) > 4 {
		return "", fmt.Errorf("--version %q: use 1 to 4 numbers separated by dots, e.g. 1.0.0.0", v)
	}
	for _, p := range parts {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 0 || n > 65535 || fmt.Sprint(n) != p {
			return "", fmt.Errorf("--version %q: %q is not a number from 0 to 65535", v, p)
		}
	}
	for len(parts) < 4 {
		parts = append(parts, "0")
	}
	return strings.Join(parts, "."), nil
}

// defaultApps lists the regular executables directly under dir/bin.
func defaultApps(dir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "bin"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		if info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			out = append(out, "bin/"+e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// addApp adds an application and its app path (the command on PATH) for a
// file of the tree.
func addApp(m *appvpkg.Manifest, dir, rel string) error {
	rel = filepath.ToSlash(filepath.Clean(rel))
	if filepath.IsAbs(rel) || strings.HasPrefix(rel, "../") || rel == ".." {
		return usagef("--app %q must be a path inside --from-dir", rel)
	}
	info, err := os.Stat(filepath.Join(dir, rel))
	if err != nil {
		return usagef("--app %q: %v", rel, err)
	}
	if !info.Mode().IsRegular() || info.Mode()&fs.ModePerm&0o111 == 0 {
		return usagef("--app %q is not an executable file", rel)
	}
	id := "[{" + appvpkg.PackageRootToken + "}]/" + rel
	name := path.Base(rel)
	if err := m.AddApplication(appvpkg.Application{ID: id, Origin: "User", DisplayName: name}); err != nil {
		return err
	}
	return m.AddExtension(appvpkg.Extension{Application: id, AppPath: &appvpkg.AppPath{Name: name, ApplicationPath: id, ApplicationID: id}})
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments (got %q); see --help", cmd.CommandPath(), args)
	}
	return nil
}
