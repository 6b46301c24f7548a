package sequencer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/dynconfig"
	"github.com/appv/appv/internal/venv"
)

// Options describe a sequencing run.
type Options struct {
	Name, Version string
	Publisher     string // default "CN=appv"

	// Installer is run with /bin/sh -c in Dir (the directory sequencing was
	// started from). FromDir replaces the capture with a tree that is
	// already laid out (its contents appear at PackageRoot).
	Installer string
	Dir       string
	FromDir   string

	// PackageRoot overrides the primary virtual application directory.
	PackageRoot string
	// Launch commands are run in a virtual environment over the captured
	// files; what they read becomes the primary feature block.
	Launch        []string
	LaunchTimeout time.Duration
	// Upgrade is an older version of the package: the installer runs on top
	// of it, and the new version keeps its PackageId and history.
	Upgrade string

	// OutDir receives NAME.appv, NAME_DeploymentConfig.xml,
	// NAME_UserConfig.xml and Report.xml.
	OutDir string
	// Work is a scratch directory (default: a new one under /var/tmp).
	Work string

	// Exe and ExeArgs run venv.SupervisorMain (the appv binary and its
	// hidden verb).
	Exe     string
	ExeArgs []string

	// Phase is told when each phase starts (the progress display).
	Phase func(n, of int, what string)
	// Progress reports packaging progress in bytes.
	Progress       func(done, total int64)
	Stdout, Stderr io.Writer // installer and launch output
	Logger         *slog.Logger
}

// Result is what a sequencing run wrote.
type Result struct {
	Identity         appvpkg.Identity
	Package          string // paths in OutDir
	DeploymentConfig string
	UserConfig       string
	ReportFile       string
	Report           *Report
	PackageSize      int64
	Files            int
	PrimaryBlocks    int
	PackageRoot      string
}

const phases = 6

// Sequence captures an installation (or takes a laid-out tree) and writes
// the package and its companion files into OutDir. Nothing is left in
// OutDir unless every output was written: they are written into a hidden
// directory inside OutDir and renamed into place at the end.
func Sequence(ctx context.Context, o Options) (*Result, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	phase := func(n int, what string) {
		if o.Phase != nil {
			o.Phase(n, phases, what)
		}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	work := o.Work
	if work == "" {
		d, err := os.MkdirTemp("/var/tmp", "appv-sequence-")
		if err != nil {
			return nil, fmt.Errorf("sequence: scratch directory: %w", err)
		}
		work = d
		defer os.RemoveAll(work)
	}

	// The identity: a new package, or the next version of an old one.
	id := appvpkg.Identity{Name: o.Name, Publisher: o.Publisher, Version: o.Version, PackageID: appvpkg.NewGUID(), VersionID: appvpkg.NewGUID()}
	var history *appvpkg.PackageHistory
	var base *baseVersion
	if o.Upgrade != "" {
		phase(1, "reading the version to upgrade: "+o.Upgrade)
		b, err := openBase(ctx, o.Upgrade, filepath.Join(work, "base"))
		if err != nil {
			return nil, err
		}
		base = b
		id.PackageID = b.identity.PackageID
		if o.Publisher == "" {
			id.Publisher = b.identity.Publisher
		}
		if o.PackageRoot == "" {
			o.PackageRoot = b.packageRoot
		}
		history = b.history
	}

	report := &Report{}
	var staged *Staged
	if o.FromDir != "" {
		phase(2, "taking the laid-out tree "+o.FromDir)
		staged = &Staged{Dir: o.FromDir, PackageRoot: o.PackageRoot, Report: report}
		report.Add(Info, "PackageRoot", o.PackageRoot, "the tree given with --from-dir is the package root")
	} else {
		phase(2, "running the installer in an isolated environment: "+o.Installer)
		baseRoot := ""
		if base != nil {
			baseRoot = base.root
		}
		c, err := CaptureInstaller(ctx, CaptureOptions{
			Installer: o.Installer, Dir: o.Dir, Work: filepath.Join(work, "capture"), Base: baseRoot,
			Exe: o.Exe, ExeArgs: o.ExeArgs, Stdout: o.Stdout, Stderr: o.Stderr, Logger: log,
		})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		phase(3, fmt.Sprintf("laying out %d changes as a package", len(c.Changes)))
		if staged, err = Stage(ctx, c, LayoutOptions{Name: o.Name, PackageRoot: o.PackageRoot, Work: filepath.Join(work, "layout")}); err != nil {
			return nil, err
		}
		if staged.Report != nil {
			report.Messages = append(report.Messages, staged.Report.Messages...)
		}
		staged.Report = report
		if base != nil {
			if err := mergeBase(staged, base.root); err != nil {
				return nil, err
			}
		}
	}

	phase(4, "finding applications and extension points")
	m := appvpkg.NewManifest(id)
	publishing, err := DetectExtensions(staged, m, report)
	if err != nil {
		return nil, err
	}
	sm := &appvpkg.StreamMap{}
	for _, p := range publishing {
		if err := sm.Publishing.Add(p); err != nil {
			return nil, fmt.Errorf("sequence: publishing feature block: %w", err)
		}
	}
	if err := addExecutableHeads(staged.Dir, &sm.Publishing); err != nil {
		return nil, err
	}

	if len(o.Launch) > 0 {
		phase(5, fmt.Sprintf("recording what %d launch command(s) read", len(o.Launch)))
		home := filepath.Join(work, "launch-home")
		if err := os.MkdirAll(home, 0o700); err != nil {
			return nil, err
		}
		// Environments keep their sockets under RunDir: a Unix socket path
		// has at most 107 bytes, so it gets a short directory of its own.
		runDir, err := os.MkdirTemp("/run", "avs-")
		if err != nil {
			if runDir, err = os.MkdirTemp("", "avs-"); err != nil {
				return nil, err
			}
		}
		defer os.RemoveAll(runDir)
		primary, err := Record(ctx, RecordOptions{
			Staged: staged, Commands: o.Launch, Timeout: o.LaunchTimeout,
			User: venv.User{UID: 0, GID: 0, Groups: []uint32{0}, Name: "root", Home: home},
			Exe:  o.Exe, ExeArgs: o.ExeArgs, RunDir: runDir,
			Stdout: o.Stdout, Stderr: o.Stderr, Logger: log,
		})
		if err != nil {
			return nil, err
		}
		sm.Primary = primary
		report.Add(Info, "Launch", "", fmt.Sprintf("primary feature block: %d files, %d blocks", len(primary.Files), countBlocks(primary)))
	} else {
		phase(5, "no --launch command: no primary feature block")
	}

	phase(6, "writing the package")
	if history == nil {
		history = &appvpkg.PackageHistory{}
	}
	action, n := appvpkg.HistoryCreated, len(history.Items)+1
	if base != nil {
		action = appvpkg.HistoryUpgraded
	}
	history.Append(appvpkg.HistoryItem{
		Time: time.Now().UTC().Truncate(time.Second), Action: action, PackageVersion: strconv.Itoa(n),
		PackagingEngine: "appv", SequencerUser: "root", OS: osRelease(),
	})
	return writeOutputs(ctx, o, staged, m, sm, history, report)
}

func (o *Options) check() error {
	switch {
	case o.Name == "" || o.Version == "":
		return errors.New("sequence: a name and a version are required")
	case o.OutDir == "":
		return errors.New("sequence: an output directory is required")
	case (o.Installer == "") == (o.FromDir == ""):
		return errors.New("sequence: give an installer command or a laid-out tree (--from-dir), not both")
	case o.FromDir != "" && o.PackageRoot == "":
		return errors.New("sequence: --from-dir needs --root, where the tree appears at run time")
	}
	if o.Publisher == "" && o.Upgrade == "" {
		o.Publisher = "CN=appv"
	}
	if o.LaunchTimeout == 0 {
		o.LaunchTimeout = 30 * time.Second
	}
	if o.Dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		o.Dir = wd
	}
	return nil
}

// baseVersion is the version an upgrade starts from.
type baseVersion struct {
	identity    appvpkg.Identity
	history     *appvpkg.PackageHistory
	packageRoot string
	root        string // its extracted Root/ tree
}

func openBase(ctx context.Context, file, dir string) (*baseVersion, error) {
	p, err := appvpkg.OpenFile(file)
	if err != nil {
		return nil, fmt.Errorf("sequence: --upgrade %s: %w", file, err)
	}
	defer p.Close()
	data, err := p.ReadAll(appvpkg.ManifestPart, appvpkg.MaxXMLPartSize)
	if err != nil {
		return nil, fmt.Errorf("sequence: --upgrade %s: %w", file, err)
	}
	m, err := appvpkg.ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("sequence: --upgrade %s: %w", file, err)
	}
	b := &baseVersion{identity: m.Identity(), history: &appvpkg.PackageHistory{}, root: filepath.Join(dir, appvpkg.RootDir)}
	if data, err := p.ReadAll(appvpkg.PackageHistoryPart, appvpkg.MaxXMLPartSize); err == nil {
		if b.history, err = appvpkg.ParsePackageHistory(data); err != nil {
			return nil, fmt.Errorf("sequence: --upgrade %s: %w", file, err)
		}
	}
	meta, err := p.FSMetadata()
	if err != nil {
		return nil, fmt.Errorf("sequence: --upgrade %s: %w", file, err)
	}
	if meta != nil {
		b.packageRoot = meta.Root
	}
	if err := p.Extract(ctx, dir, appvpkg.ExtractOptions{}); err != nil {
		return nil, fmt.Errorf("sequence: --upgrade %s: %w", file, err)
	}
	if err := os.MkdirAll(b.root, 0o755); err != nil {
		return nil, err
	}
	return b, nil
}

// mergeBase completes an upgrade's staged tree with the files of the old
// version that the installer did not change or delete, so the new package
// is whole. Files are hard-linked where possible.
func mergeBase(st *Staged, baseRoot string) error {
	deleted := map[string]bool{}
	for _, d := range st.Deleted {
		deleted[strings.TrimPrefix(d, appvpkg.RootDir+"/")] = true
	}
	gone := func(rel string) bool {
		for p := rel; p != "." && p != "/"; p = path.Dir(p) {
			if deleted[p] {
				return true
			}
		}
		return false
	}
	return filepath.WalkDir(baseRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(baseRoot, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if gone(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := filepath.Join(st.Dir, filepath.FromSlash(rel))
		if _, err := os.Lstat(dst); err == nil {
			return nil // changed by the installer: the new one wins
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(dst, info.Mode().Perm()); err != nil {
				return err
			}
			return os.Chtimes(dst, info.ModTime(), info.ModTime())
		case info.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(t, dst)
		default:
			if err := os.Link(p, dst); err == nil {
				return nil
			}
			return copyFile(p, dst, info)
		}
	})
}

func copyFile(src, dst string, info fs.FileInfo) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Chmod(dst, info.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	return os.Chtimes(dst, info.ModTime(), info.ModTime())
}

// addExecutableHeads adds the first block of every executable to the
// publishing feature block (App-V: the PE headers of extension-point
// targets), so publishing can inspect them without streaming.
func addExecutableHeads(dir string, fb *appvpkg.FeatureBlock) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode()&0o111 == 0 || info.Size() == 0 {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		name := appvpkg.RootDir + "/" + filepath.ToSlash(rel)
		if f, ok := fb.File(name); ok && f.Whole() {
			return nil
		}
		return fb.Add(name, appvpkg.BlockRange{Index: 0, Count: 1})
	})
}

func countBlocks(fb appvpkg.FeatureBlock) int {
	n := 0
	for _, f := range fb.Files {
		for _, r := range f.Ranges {
			n += r.Count
		}
	}
	return n
}

// osRelease names the sequencing station's system.
func osRelease() string {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

// writeOutputs writes the package, the dynamic configuration templates and
// the report into a hidden directory in OutDir, then renames them into
// place.
func writeOutputs(ctx context.Context, o Options, st *Staged, m *appvpkg.Manifest, sm *appvpkg.StreamMap, h *appvpkg.PackageHistory, report *Report) (*Result, error) {
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("sequence: %w", err)
	}
	tmp, err := os.MkdirTemp(o.OutDir, ".appv-sequence-partial-")
	if err != nil {
		return nil, fmt.Errorf("sequence: %w", err)
	}
	defer os.RemoveAll(tmp)
	res := &Result{Identity: m.Identity(), Report: report, PackageRoot: st.PackageRoot, PrimaryBlocks: countBlocks(sm.Primary)}
	pkgFile := filepath.Join(tmp, o.Name+".appv")
	f, err := os.Create(pkgFile)
	if err != nil {
		return nil, fmt.Errorf("sequence: %w", err)
	}
	cr, err := appvpkg.Create(ctx, f, appvpkg.CreateOptions{
		Dir: st.Dir, PackageRoot: st.PackageRoot, Manifest: m, StreamMap: sm, History: h,
		Opaque: st.Opaque, Deleted: st.Deleted, SkipExternalSymlinks: true, Progress: o.Progress,
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("sequence: write %s.appv: %w", o.Name, err)
	}
	for _, s := range cr.Skipped {
		report.Add(Warning, "Symlink", "", s)
	}
	res.PackageSize, res.Files = cr.PackageSize, cr.Files
	deployment, user, err := dynconfig.Generate(m)
	if err != nil {
		return nil, fmt.Errorf("sequence: dynamic configuration: %w", err)
	}
	rep, err := report.Marshal()
	if err != nil {
		return nil, fmt.Errorf("sequence: Report.xml: %w", err)
	}
	outputs := []struct {
		name string
		data []byte
		dst  *string
	}{
		{o.Name + "_DeploymentConfig.xml", deployment, &res.DeploymentConfig},
		{o.Name + "_UserConfig.xml", user, &res.UserConfig},
		{"Report.xml", rep, &res.ReportFile},
	}
	for _, out := range outputs {
		if err := os.WriteFile(filepath.Join(tmp, out.name), out.data, 0o644); err != nil {
			return nil, fmt.Errorf("sequence: %w", err)
		}
	}
	// Everything is written: move it into place, the package last, so a
	// package in OutDir always has its companions.
	for _, out := range outputs {
		*out.dst = filepath.Join(o.OutDir, out.name)
		if err := os.Rename(filepath.Join(tmp, out.name), *out.dst); err != nil {
			return nil, fmt.Errorf("sequence: %w", err)
		}
	}
	res.Package = filepath.Join(o.OutDir, o.Name+".appv")
	if err := os.Chmod(pkgFile, 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(pkgFile, res.Package); err != nil {
		return nil, fmt.Errorf("sequence: %w", err)
	}
	return res, nil
}
