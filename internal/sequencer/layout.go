package sequencer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/appv/appv/internal/appvpkg"
)

// LayoutOptions configure Stage.
type LayoutOptions struct {
	// Name is the package's name; without a directory of its own in /opt
	// or /usr/local, the package root is /opt/<name in lower case>.
	Name string
	// PackageRoot overrides the primary virtual application directory (an
	// absolute native path other than /).
	PackageRoot string
	// Work is a directory for Stage (made when missing): the tree is
	// staged in Work/stage, which must not exist yet.
	Work string
}

// Stage lays a capture out as a package tree (Staged.Dir), as
// appvpkg.Create takes it: the primary virtual application directory's
// contents at the top, every other path under VFS/<Folder>/ by its known
// folder (appvpkg.TokenForPath; the installer's home gives the per-user
// folders), with modes, setuid bits, symlinks and modification times kept.
// Files are hard links to the capture's where possible (copies otherwise),
// so the staged tree outlives the capture's Close.
//
// What must not travel is left out and reported (see exclusions and
// docs): temporary files, logs, caches, the package manager's databases,
// named pipes, sockets and device nodes, paths outside the known folders,
// symlinks leading outside their folder. Setuid and setgid files, kernel
// modules and systemd units are kept, with a warning: they do not behave
// as on the host in a virtual environment. Deletions and opaque directories
// become Staged.Deleted and Staged.Opaque.
func Stage(ctx context.Context, c *Capture, opts LayoutOptions) (*Staged, error) {
	if opts.Work == "" {
		return nil, errors.New("sequencer: stage: no work directory given")
	}
	if opts.PackageRoot != "" && (!path.IsAbs(opts.PackageRoot) || path.Clean(opts.PackageRoot) == "/") {
		return nil, fmt.Errorf("sequencer: stage: package root %q must be an absolute directory other than /", opts.PackageRoot)
	}
	if err := os.MkdirAll(opts.Work, 0o755); err != nil {
		return nil, fmt.Errorf("sequencer: stage: %w", err)
	}
	dir := filepath.Join(opts.Work, "stage")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sequencer: stage: %w", err)
	}
	l := &layout{
		dir:      dir,
		report:   &Report{},
		excluded: make(map[string]*excludedTree),
		outside:  make(map[string][]string),
		modules:  make(map[string]int),
		dirs:     make(map[string]stagedDir),
	}
	staged, err := l.run(ctx, c, opts)
	if err != nil {
		if rerr := os.RemoveAll(dir); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, err
	}
	return staged, nil
}

// layout is one Stage run.
type layout struct {
	dir    string // the staged tree
	root   string // the package root (native)
	report *Report

	excluded  map[string]*excludedTree // by the tree or file reported
	outside   map[string][]string      // paths outside known folders, by top-level directory
	modules   map[string]int           // kernel modules, by directory or file
	rewritten int                      // absolute symlinks made relative
	dirs      map[string]stagedDir     // staged directories' attributes, by stage path
	made      map[string]bool          // directories made in the stage
	opaque    []string
	deleted   []string
}

type excludedTree struct {
	reason string
	n      int
}

type stagedDir struct {
	mode  fs.FileMode
	mtime time.Time
}

func (l *layout) run(ctx context.Context, c *Capture, opts LayoutOptions) (*Staged, error) {
	l.made = map[string]bool{"": true}
	var keep []Change
	for _, ch := range c.Changes {
		if ch.Path == "~" || ch.Path == "/" {
			continue
		}
		if key, reason, ok := excludedBy(ch.Path, ch.Type == fs.ModeDir); ok {
			x := l.excluded[key]
			if x == nil {
				x = &excludedTree{reason: reason}
				l.excluded[key] = x
			}
			x.n++
			continue
		}
		if t := specialType(ch.Type); t != "" && ch.Kind != Deleted {
			l.report.Add(Warning, "Excluded", ch.Path, fmt.Sprintf("a %s: a package holds only files, directories and symlinks, so it is left out; the application must make it when it runs", t))
			continue
		}
		keep = append(keep, ch)
	}
	root, why := choosePackageRoot(keep, opts.Name, opts.PackageRoot)
	l.root = root
	l.report.Add(Info, "PackageRoot", root, "primary virtual application directory: "+why)

	for _, ch := range keep {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("sequencer: stage: %w", err)
		}
		if err := l.place(ch); err != nil {
			return nil, err
		}
	}
	if err := l.finishDirs(); err != nil {
		return nil, err
	}
	l.reportGroups()
	slices.Sort(l.opaque)
	slices.Sort(l.deleted)
	return &Staged{Dir: l.dir, PackageRoot: root, Opaque: l.opaque, Deleted: l.deleted, Report: l.report}, nil
}

// located is where a native path goes in the package.
type located struct {
	rel     string // stage path, slash-separated: "bin/app", "VFS/Usr/bin/x"
	subRel  string // the stage path of its subtree: "" or "VFS/<Folder>"
	folder  string // the subtree's native directory (home paths under captureHome)
	inRoot  bool   // in the package root, not a VFS folder
	topOnly bool   // the path is its subtree's root
}

// locate maps a Change path to the stage. ok is false for paths outside
// the package root and every known folder.
func (l *layout) locate(p string) (loc located, ok bool) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		if inTree(p, l.root) {
			rel := strings.TrimPrefix(strings.TrimPrefix(p, l.root), "/")
			return located{rel: rel, folder: l.root, inRoot: true, topOnly: rel == ""}, true
		}
		tok, rel, ok := appvpkg.TokenForPath(p, "")
		if !ok {
			return located{}, false
		}
		return l.inFolder(tok, rel), true
	}
	// The home's paths: map them with a made-up home no native path
	// shares.
	const fakeHome = "/~"
	tok, rel, ok := appvpkg.TokenForPath(fakeHome+strings.TrimPrefix(p, "~"), fakeHome)
	if !ok || !tok.PerUser {
		return located{}, false
	}
	return l.inFolder(tok, rel), true
}

func (l *layout) inFolder(tok appvpkg.Token, rel string) located {
	sub := "VFS/" + tok.Name
	loc := located{rel: sub, subRel: sub, folder: tok.NativePath(captureHome), topOnly: rel == ""}
	if rel != "" {
		loc.rel = sub + "/" + rel
	}
	return loc
}

// holdsFolder reports whether the native path p is a known folder, an
// ancestor of one, or an ancestor of the package root: a directory that
// exists to hold others (~/.local, /usr/local), never the package's own.
func (l *layout) holdsFolder(p string) bool {
	native := p
	if native == "~" || strings.HasPrefix(native, "~/") {
		native = captureHome + strings.TrimPrefix(native, "~")
	}
	if inTree(l.root, native) {
		return true
	}
	for _, t := range appvpkg.LinuxTokens() {
		if inTree(t.NativePath(captureHome), native) {
			return true
		}
	}
	return false
}

// place stages one kept change.
func (l *layout) place(ch Change) error {
	loc, ok := l.locate(ch.Path)
	if !ok {
		top := "/" + strings.SplitN(strings.TrimPrefix(ch.Path, "/"), "/", 2)[0]
		l.outside[top] = append(l.outside[top], ch.Path)
		return nil
	}
	pkgPath := appvpkg.RootDir + "/" + loc.rel
	if loc.rel == "" {
		pkgPath = appvpkg.RootDir
	}
	switch ch.Kind {
	case Deleted:
		if !loc.topOnly {
			l.deleted = append(l.deleted, pkgPath)
		}
		return nil
	case Opaque:
		if err := l.stageDir(ch, loc); err != nil {
			return err
		}
		if !(loc.inRoot && loc.topOnly) {
			l.opaque = append(l.opaque, pkgPath)
		}
		return nil
	}
	switch {
	case ch.Type == fs.ModeDir:
		if l.holdsFolder(ch.Path) {
			return nil
		}
		return l.stageDir(ch, loc)
	case ch.Type == fs.ModeSymlink:
		target, ok := l.symlinkTarget(ch, loc, pkgPath)
		if !ok {
			l.report.Add(Warning, "Symlink", ch.Path, fmt.Sprintf("a symlink to %s, which leads outside its folder in the package: a package cannot hold it (docs/format.md), so it is left out", ch.Target))
			return nil
		}
		l.warnPlacement(ch)
		return l.stageSymlink(ch, loc, target)
	case ch.Type.IsRegular():
		l.warnPlacement(ch)
		if ch.Mode&fs.ModeSetuid != 0 || ch.Mode&fs.ModeSetgid != 0 {
			what := "set-user-ID"
			if ch.Mode&fs.ModeSetuid == 0 {
				what = "set-group-ID"
			}
			l.report.Add(Warning, "Setuid", ch.Path, fmt.Sprintf("a %s program: in a virtual environment it runs without its owner's privileges (the package's folders are mounted nosuid and programs run with no_new_privs)", what))
		}
		return l.stageFile(ch, loc)
	}
	return fmt.Errorf("sequencer: stage: %s: unexpected file type %v", ch.Path, ch.Type)
}

// warnPlacement notes files that do not work from a virtual environment.
func (l *layout) warnPlacement(ch Change) {
	if key, ok := kernelModule(ch.Path); ok {
		l.modules[key]++
	}
	if systemdFile(ch.Path) {
		l.report.Add(Warning, "SystemdUnit", ch.Path, "systemd does not see a virtual environment's files: this unit or setting is not used, and no service of the package starts on its own")
	}
}

// symlinkTarget applies the package's symlink rule to a link
// (appvpkg.FSEntry.SymlinkStaysInside): a target that stays inside the
// link's subtree is kept; an absolute one inside the link's own known
// folder is made relative (it then means the same at run time); any other
// makes ok false.
func (l *layout) symlinkTarget(ch Change, loc located, pkgPath string) (string, bool) {
	e := appvpkg.FSEntry{Path: pkgPath, Type: appvpkg.FSSymlink, Target: ch.Target}
	root := ""
	if loc.inRoot {
		root = l.root
	}
	if e.SymlinkStaysInside(root) {
		return ch.Target, true
	}
	if loc.inRoot || !path.IsAbs(ch.Target) {
		return "", false
	}
	link := ch.Path
	if strings.HasPrefix(link, "~/") {
		link = captureHome + strings.TrimPrefix(link, "~")
	}
	t := path.Clean(ch.Target)
	if !inTree(t, loc.folder) {
		return "", false
	}
	rel, err := filepath.Rel(path.Dir(link), t)
	if err != nil {
		return "", false
	}
	e.Target = filepath.ToSlash(rel)
	if !e.SymlinkStaysInside("") {
		return "", false
	}
	l.rewritten++
	return e.Target, true
}

// stagePath is where a stage path is on disk.
func (l *layout) stagePath(rel string) string {
	return filepath.Join(l.dir, filepath.FromSlash(rel))
}

// parents makes the staged directories above loc.rel that are missing.
// Those below the subtree's root take the mode and time of the capture's
// directory at the same place (the copy-up of the native one); the others
// are 0755.
func (l *layout) parents(loc located, src string) error {
	parts := strings.Split(loc.rel, "/")
	for i := 1; i < len(parts); i++ {
		a := strings.Join(parts[:i], "/")
		if l.made[a] {
			continue
		}
		if err := os.Mkdir(l.stagePath(a), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("sequencer: stage: %w", err)
		}
		l.made[a] = true
		attr := stagedDir{mode: 0o755}
		if src != "" && len(a) > len(loc.subRel) {
			s := src
			for range len(parts) - i {
				s = filepath.Dir(s)
			}
			if st, err := os.Lstat(s); err == nil && st.IsDir() {
				attr = stagedDir{mode: permBits(st.Mode()), mtime: st.ModTime()}
			}
		}
		if _, set := l.dirs[a]; !set {
			l.dirs[a] = attr
		}
	}
	return nil
}

func (l *layout) stageDir(ch Change, loc located) error {
	if err := l.parents(loc, ch.Source); err != nil {
		return err
	}
	if !l.made[loc.rel] {
		if err := os.Mkdir(l.stagePath(loc.rel), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("sequencer: stage: %w", err)
		}
		l.made[loc.rel] = true
	}
	if loc.rel == "" {
		return nil // the stage's own root
	}
	attr := stagedDir{mode: ch.Mode}
	if loc.topOnly {
		attr.mode = 0o755 // a folder's root: the native directory's mode stays
	}
	if ch.Source != "" {
		if st, err := os.Lstat(ch.Source); err == nil {
			attr.mtime = st.ModTime()
		}
	}
	l.dirs[loc.rel] = attr
	return nil
}

func (l *layout) stageFile(ch Change, loc located) error {
	if ch.Source == "" {
		return fmt.Errorf("sequencer: stage: %s: no content (Change.Source is empty)", ch.Path)
	}
	if err := l.parents(loc, ch.Source); err != nil {
		return err
	}
	info, err := os.Lstat(ch.Source)
	if err != nil {
		return fmt.Errorf("sequencer: stage: %w", err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("sequencer: stage: %s: %s is not a regular file", ch.Path, ch.Source)
	}
	if err := linkOrCopy(ch.Source, l.stagePath(loc.rel), info); err != nil {
		return fmt.Errorf("sequencer: stage: %s: %w", ch.Path, err)
	}
	return nil
}

func (l *layout) stageSymlink(ch Change, loc located, target string) error {
	if err := l.parents(loc, ch.Source); err != nil {
		return err
	}
	var mtime time.Time
	if ch.Source != "" {
		if st, err := os.Lstat(ch.Source); err == nil {
			mtime = st.ModTime()
		}
	}
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	if err := makeSymlink(target, l.stagePath(loc.rel), mtime); err != nil {
		return fmt.Errorf("sequencer: stage: %s: %w", ch.Path, err)
	}
	return nil
}

// finishDirs gives the staged directories their modes and times, deepest
// first, so that neither a read-only directory nor a child's change
// disturbs another.
func (l *layout) finishDirs() error {
	rels := make([]string, 0, len(l.dirs))
	for rel := range l.dirs {
		rels = append(rels, rel)
	}
	slices.SortFunc(rels, func(a, b string) int {
		if d := strings.Count(b, "/") - strings.Count(a, "/"); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	for _, rel := range rels {
		d := l.dirs[rel]
		p := l.stagePath(rel)
		if err := os.Chmod(p, d.mode); err != nil {
			return fmt.Errorf("sequencer: stage: %w", err)
		}
		if !d.mtime.IsZero() {
			if err := os.Chtimes(p, d.mtime, d.mtime); err != nil {
				return fmt.Errorf("sequencer: stage: %w", err)
			}
		}
	}
	return nil
}

// reportGroups adds the messages that cover several paths at once, in a
// stable order.
func (l *layout) reportGroups() {
	for _, key := range sortedKeys(l.excluded) {
		x := l.excluded[key]
		l.report.Add(Info, "Excluded", key, fmt.Sprintf("%s: left out of the package (%d %s)", x.reason, x.n, plural(x.n, "path", "paths")))
	}
	for _, key := range sortedKeys(l.modules) {
		n := l.modules[key]
		l.report.Add(Warning, "KernelModule", key, fmt.Sprintf("%d kernel module %s: a virtual environment cannot load modules into the kernel; install them on the host", n, plural(n, "file", "files")))
	}
	for _, key := range sortedKeys(l.outside) {
		ps := l.outside[key]
		ex := ps[:min(3, len(ps))]
		more := ""
		if len(ps) > len(ex) {
			more = ", ..."
		}
		l.report.Add(Warning, "OutsideKnownFolders", key, fmt.Sprintf("%d %s outside the folders a package can hold (%s%s): not packaged", len(ps), plural(len(ps), "path", "paths"), strings.Join(ex, ", "), more))
	}
	if l.rewritten > 0 {
		l.report.Add(Info, "Symlink", "", fmt.Sprintf("%d absolute %s within %s own folder made relative, so that %s inside the package", l.rewritten, plural(l.rewritten, "symlink", "symlinks"), plural(l.rewritten, "its", "their"), plural(l.rewritten, "it stays", "they stay")))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
