package sequencer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/appv/appv/internal/appvpkg"
)

// composeBase lays the old version out for the capture's layers: one
// directory per layer, under dst, holding what the old version has at that
// layer's native place (Root/VFS/Usr and Root/VFS/UsrLocal both go into the
// one for /usr, at . and local/), with a whiteout for each path it deletes
// and the opaque mark on each directory it replaces. Files are hard links
// to Base's where possible. It sets each layer's base.
func composeBase(base, baseRoot, dst string, layers []captureLayer, log *slog.Logger) error {
	base, err := filepath.Abs(base)
	if err != nil {
		return fmt.Errorf("sequencer: capture: old version: %w", err)
	}
	if st, err := os.Stat(base); err != nil || !st.IsDir() {
		return fmt.Errorf("sequencer: capture: old version %s is not a directory (%v)", base, err)
	}
	meta, err := readBaseMetadata(base)
	if err != nil {
		return err
	}
	if baseRoot == "" && meta != nil {
		baseRoot = meta.Root
	}
	if baseRoot != "" {
		baseRoot = path.Clean(baseRoot)
	}

	// place finds the layer a native path belongs to (the deepest one
	// holding it; the home's paths are under captureHome here) and makes
	// its composed directory.
	used := make(map[int]string)
	place := func(native string) (string, bool, error) {
		best := -1
		for i, l := range layers {
			if inTree(native, l.target) && (best < 0 || len(l.target) > len(layers[best].target)) {
				best = i
			}
		}
		if best < 0 {
			return "", false, nil
		}
		l := layers[best]
		root, ok := used[best]
		if !ok {
			root = filepath.Join(dst, filepath.FromSlash(l.name))
			if err := os.MkdirAll(root, 0o755); err != nil {
				return "", false, fmt.Errorf("sequencer: capture: lay out the old version: %w", err)
			}
			used[best] = root
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(native, l.target), "/")
		return filepath.Join(root, rel), true, nil
	}

	// Known folders, shorter native paths first, so that /usr/local's
	// files go into the /usr tree's local/.
	toks := appvpkg.LinuxTokens()
	slices.Reverse(toks)
	for _, tok := range toks {
		src := filepath.Join(base, "VFS", tok.Name)
		if _, err := os.Lstat(src); err != nil {
			continue
		}
		native := tok.NativePath(captureHome)
		at, ok, err := place(native)
		if err != nil {
			return err
		}
		if !ok {
			log.Warn("the old version's folder is not overlaid; the installer does not see it", "folder", tok.Name)
			continue
		}
		if err := linkTree(src, at); err != nil {
			return fmt.Errorf("sequencer: capture: lay out the old version's %s: %w", tok.Name, err)
		}
	}
	if ents, err := os.ReadDir(filepath.Join(base, "VFS")); err == nil {
		for _, e := range ents {
			if t, ok := appvpkg.LookupToken(e.Name()); !ok || t.Windows {
				log.Warn("the old version's folder has no Linux place; the installer does not see it", "folder", e.Name())
			}
		}
	}

	// The package root.
	ents, err := os.ReadDir(base)
	if err != nil {
		return fmt.Errorf("sequencer: capture: old version: %w", err)
	}
	ents = slices.DeleteFunc(ents, func(e fs.DirEntry) bool { return e.Name() == "VFS" })
	at, ok := "", false
	if baseRoot != "" {
		if at, ok, err = place(baseRoot); err != nil {
			return err
		}
	}
	switch {
	case baseRoot == "" && len(ents) > 0:
		log.Warn("the old version's package root is unknown; the installer does not see its files", "base", base)
	case baseRoot != "" && !ok:
		log.Warn("the old version's package root is not overlaid; the installer does not see its files", "root", baseRoot)
	case baseRoot != "":
		if err := os.MkdirAll(at, 0o755); err != nil {
			return fmt.Errorf("sequencer: capture: lay out the old package root: %w", err)
		}
		for _, e := range ents {
			if err := linkTree(filepath.Join(base, e.Name()), filepath.Join(at, e.Name())); err != nil {
				return fmt.Errorf("sequencer: capture: lay out the old package root: %w", err)
			}
		}
	}

	// What the old version hides.
	if meta != nil {
		toNative := func(p string) (string, bool) { return packageToNative(p, baseRoot) }
		for _, p := range meta.Deleted {
			native, ok := toNative(p)
			if !ok {
				continue
			}
			at, ok, err := place(native)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := makeWhiteout(at, native); err != nil {
				return fmt.Errorf("sequencer: capture: the old version's deletion of %s: %w", native, err)
			}
		}
		for _, d := range meta.OpaqueDirs {
			native, ok := toNative(d.Path)
			if !ok {
				continue
			}
			at, ok, err := place(native)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := makeOpaque(at); err != nil {
				return fmt.Errorf("sequencer: capture: the old version's opaque directory %s: %w", native, err)
			}
		}
	}
	for i, root := range used {
		layers[i].base = root
	}
	return nil
}

// readBaseMetadata reads the FilesystemMetadata.xml that Package.Extract
// leaves beside Root/; nil when there is none.
func readBaseMetadata(base string) (*appvpkg.FSMetadata, error) {
	p := filepath.Join(filepath.Dir(base), appvpkg.FSMetadataPart)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sequencer: capture: old version: %w", err)
	}
	meta, err := appvpkg.ParseFSMetadata(data)
	if err != nil {
		return nil, fmt.Errorf("sequencer: capture: old version: %s: %w", p, err)
	}
	return meta, nil
}

// packageToNative maps a package path ("Root/VFS/Etc/foo", "Root/bin/x")
// to where it appears inside the capture (the home being captureHome).
func packageToNative(p, pkgRoot string) (string, bool) {
	rest, ok := strings.CutPrefix(p, appvpkg.RootDir+"/")
	if !ok {
		return "", false
	}
	if vfs, ok := strings.CutPrefix(rest, "VFS/"); ok {
		name, rel, _ := strings.Cut(vfs, "/")
		tok, ok := appvpkg.LookupToken(name)
		if !ok || tok.Windows {
			return "", false
		}
		return path.Join(tok.NativePath(captureHome), rel), true
	}
	if pkgRoot == "" {
		return "", false
	}
	return path.Join(pkgRoot, rest), true
}

// makeWhiteout puts an overlay whiteout at at, making its parents, unless
// something is there already. native is the path at stands for: parents
// take the host's modes, so that the old version does not change them.
func makeWhiteout(at, native string) error {
	if _, err := os.Lstat(at); err == nil {
		return nil
	}
	if err := mkdirLike(filepath.Dir(at), path.Dir(native)); err != nil {
		return err
	}
	return unix.Mknod(at, unix.S_IFCHR, int(unix.Mkdev(0, 0)))
}

// makeOpaque marks the directory at opaque, making it when missing.
func makeOpaque(at string) error {
	if err := os.MkdirAll(at, 0o755); err != nil {
		return err
	}
	return unix.Lsetxattr(at, opaqueXattr, []byte("y"), 0)
}

// mkdirLike makes dir and its missing parents, each with the mode of the
// host's directory at the same place below native (0755 where the host has
// none).
func mkdirLike(dir, native string) error {
	if _, err := os.Lstat(dir); err == nil {
		return nil
	}
	if err := mkdirLike(filepath.Dir(dir), path.Dir(native)); err != nil {
		return err
	}
	mode := fs.FileMode(0o755)
	if st, err := os.Lstat(native); err == nil && st.IsDir() {
		mode = permBits(st.Mode())
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return os.Chmod(dir, mode)
}

// linkTree copies the tree src into dst, merging with what is there:
// directories made with src's modes and times, files hard-linked (copied
// across filesystems), symlinks made anew. Other file types are skipped.
func linkTree(src, dst string) error {
	type dirAttr struct {
		path  string
		mode  fs.FileMode
		mtime time.Time
	}
	var dirs []dirAttr
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			if err := os.Mkdir(to, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			dirs = append(dirs, dirAttr{to, permBits(info.Mode()), info.ModTime()})
		case info.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return makeSymlink(t, to, info.ModTime())
		case info.Mode().IsRegular():
			return linkOrCopy(p, to, info)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Deepest first: a read-only directory must not stop its children.
	for _, d := range slices.Backward(dirs) {
		if err := os.Chmod(d.path, d.mode); err != nil {
			return err
		}
		if err := os.Chtimes(d.path, d.mtime, d.mtime); err != nil {
			return err
		}
	}
	return nil
}

// makeSymlink makes a symlink to target at p with the modification time
// mtime.
func makeSymlink(target, p string, mtime time.Time) error {
	if err := os.Symlink(target, p); err != nil {
		return err
	}
	ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimes", Path: p, Err: err}
	}
	return nil
}

// linkOrCopy hard-links the regular file src at dst, or copies it (with
// its mode, setuid and setgid included, and its modification time) when it
// cannot.
func linkOrCopy(src, dst string, info fs.FileInfo) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	} else if errors.Is(err, fs.ErrExist) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
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
	// After writing: a write clears setuid and setgid.
	if err := os.Chmod(dst, permBits(info.Mode())); err != nil {
		return err
	}
	return os.Chtimes(dst, info.ModTime(), info.ModTime())
}
