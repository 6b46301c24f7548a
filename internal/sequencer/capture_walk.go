package sequencer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// opaqueXattr marks an overlay directory that hides what lies beneath.
const opaqueXattr = "trusted.overlay.opaque"

// readChanges reads what the installer changed from the layers' upper
// directories, once nothing runs in the environment any more.
func readChanges(ctx context.Context, layers []captureLayer) ([]Change, error) {
	var out []Change
	for i := range layers {
		ch, err := layers[i].changes(ctx)
		if err != nil {
			return nil, fmt.Errorf("sequencer: capture: read changes to %s: %w", layers[i].target, err)
		}
		out = append(out, ch...)
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// changes walks the layer's upper directory: overlayfs put there every
// file the installer wrote, a whiteout (a character device 0/0) for every
// path it deleted, an opaque directory for every directory it replaced,
// and a copy of each directory on the way to those.
func (l *captureLayer) changes(ctx context.Context) ([]Change, error) {
	var out []Change
	opaque := make(map[string]bool) // upper directories hiding what lies beneath
	hiddenBelow := func(rel string) bool {
		for p := path.Dir(rel); p != "."; p = path.Dir(p) {
			if opaque[p] {
				return true
			}
		}
		return false
	}
	err := filepath.WalkDir(l.upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(l.upper, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		ch := Change{Path: l.nativePath(rel), Kind: Added, Type: info.Mode().Type(), Mode: permBits(info.Mode()), Source: p}
		below, err := l.below(rel, hiddenBelow(rel))
		if err != nil {
			return err
		}
		switch {
		case isWhiteout(info):
			if below.info == nil {
				return nil // nothing was there to delete
			}
			ch.Kind, ch.Type, ch.Mode = Deleted, below.info.Mode().Type(), 0
		case info.IsDir():
			switch {
			case isOpaqueDir(p):
				opaque[rel] = true
				ch.Kind = Opaque
			case below.info != nil && below.info.IsDir():
				if sameDirMode(ch.Mode, permBits(below.info.Mode()), below.fromBase) {
					return nil // on the way to a change
				}
			case below.hidesNative:
				// A new directory where the old version deleted the
				// native one: it still hides the native contents.
				ch.Kind = Opaque
			}
		case info.Mode().IsRegular():
			ch.Size = info.Size()
			if below.info != nil && below.info.Mode().IsRegular() && permBits(below.info.Mode()) == ch.Mode && below.info.Size() == ch.Size {
				same, err := sameContent(p, below.path)
				if err != nil {
					return err
				}
				if same {
					return nil
				}
			}
		case info.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			ch.Target, ch.Size = t, int64(len(t))
			if below.info != nil && below.info.Mode()&fs.ModeSymlink != 0 {
				if bt, err := os.Readlink(below.path); err == nil && bt == t {
					return nil
				}
			}
		}
		// Anything else (named pipes, sockets, device nodes) is Added
		// with its type; the layout leaves it out and says so.
		out = append(out, ch)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if l.base != "" {
		if out, err = l.replacedChanges(out, opaque); err != nil {
			return nil, err
		}
		if out, err = l.inheritedChanges(out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// replacedChanges adds to out a deletion for each of the old version's
// paths inside a directory the installer replaced (an opaque upper
// directory) that the installer did not make again: relative to the old
// version they are gone, and so an upgrade, which completes the new
// version with the old version's files, does not bring them back.
func (l *captureLayer) replacedChanges(out []Change, opaque map[string]bool) ([]Change, error) {
	var tops []string
	for rel := range opaque {
		top := true
		for p := path.Dir(rel); p != "."; p = path.Dir(p) {
			if opaque[p] {
				top = false
				break
			}
		}
		if top {
			tops = append(tops, rel)
		}
	}
	slices.Sort(tops)
	for _, rel := range tops {
		hidden, err := hidesBeneath(l.base, rel)
		if err != nil {
			return nil, err
		}
		if info, err := lstatBeneath(l.base, rel); hidden || err != nil || !info.IsDir() {
			continue
		}
		if out, err = l.baseOnly(out, rel); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// baseOnly adds a deletion for each entry of the old version's directory
// rel that the upper directory rel lacks, and goes into the directories
// both have.
func (l *captureLayer) baseOnly(out []Change, rel string) ([]Change, error) {
	ents, err := os.ReadDir(filepath.Join(l.base, rel))
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		child := rel + "/" + e.Name()
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		if isWhiteout(info) {
			continue
		}
		up, err := os.Lstat(filepath.Join(l.upper, child))
		switch {
		case absent(err):
			out = append(out, Change{Path: l.nativePath(child), Kind: Deleted, Type: info.Mode().Type()})
		case err != nil:
			return nil, err
		case up.IsDir() && info.IsDir():
			if out, err = l.baseOnly(out, child); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// inheritedChanges adds to out the old version's deletions and opaque
// directories that the installer left in place, so the new version keeps
// them: a whiteout or an opaque directory of the composed base, unless a
// change of the installer at or above its path already decides.
func (l *captureLayer) inheritedChanges(out []Change) ([]Change, error) {
	at := make(map[string]int, len(out))
	for i, ch := range out {
		at[ch.Path] = i
	}
	decided := func(native string) bool {
		if _, ok := at[native]; ok {
			return true
		}
		for p := path.Dir(native); p != "/" && p != "." && p != l.prefix && len(p) > len(l.prefix); p = path.Dir(p) {
			if i, ok := at[p]; ok && out[i].Kind != Added {
				return true
			}
		}
		return false
	}
	var extra []Change
	err := filepath.WalkDir(l.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(l.base, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		native := l.nativePath(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case isWhiteout(info):
			if !decided(native) {
				extra = append(extra, Change{Path: native, Kind: Deleted, Source: p})
			}
		case info.IsDir() && isOpaqueDir(p):
			if i, ok := at[native]; ok && out[i].Kind == Added && out[i].Type == fs.ModeDir {
				// Its mode changed, and it still hides the native one.
				out[i].Kind = Opaque
				return nil
			}
			if !decided(native) {
				ch := Change{Path: native, Kind: Opaque, Type: fs.ModeDir, Mode: permBits(info.Mode()), Source: p}
				if ui, err := os.Lstat(filepath.Join(l.upper, rel)); err == nil && ui.IsDir() {
					ch.Source = filepath.Join(l.upper, rel)
				}
				extra = append(extra, ch)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return append(out, extra...), nil
}

// lowerEntry is what lies beneath an upper path.
type lowerEntry struct {
	info     fs.FileInfo // nil: nothing
	path     string
	fromBase bool // the old version's, not the host's
	// hidesNative: nothing, because the old version deleted or replaced
	// the native entry that is there.
	hidesNative bool
}

// below finds what lies beneath rel in the layer: the composed old version,
// then the host's own directory, as overlayfs merges them. hidden says an
// upper directory above rel is opaque.
func (l *captureLayer) below(rel string, hidden bool) (lowerEntry, error) {
	if hidden {
		return lowerEntry{}, nil
	}
	baseHides := false
	if l.base != "" {
		h, err := hidesBeneath(l.base, rel)
		if err != nil {
			return lowerEntry{}, err
		}
		baseHides = h
		if !h {
			info, err := lstatBeneath(l.base, rel)
			switch {
			case err == nil && isWhiteout(info):
				baseHides = true
			case err == nil:
				return lowerEntry{info: info, path: filepath.Join(l.base, rel), fromBase: true}, nil
			case !absent(err):
				return lowerEntry{}, err
			}
		}
	}
	if !l.native {
		return lowerEntry{}, nil
	}
	info, err := lstatBeneath(l.target, rel)
	if err != nil {
		if absent(err) {
			return lowerEntry{}, nil
		}
		return lowerEntry{}, err
	}
	if baseHides {
		return lowerEntry{hidesNative: true}, nil
	}
	return lowerEntry{info: info, path: filepath.Join(l.target, rel)}, nil
}

// hidesBeneath reports whether a lower layer at root hides what the layers
// beneath it have at rel: one of rel's parents is a whiteout, not a
// directory, or an opaque directory there.
func hidesBeneath(root, rel string) (bool, error) {
	parts := strings.Split(rel, "/")
	for i := 1; i < len(parts); i++ {
		anc := strings.Join(parts[:i], "/")
		info, err := lstatBeneath(root, anc)
		if absent(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !info.IsDir() || isOpaqueDir(filepath.Join(root, anc)) {
			return true, nil
		}
	}
	return false, nil
}

// lstatBeneath stats rel inside root without following any symlink below
// root (overlayfs does not follow them either when it merges layers).
func lstatBeneath(root, rel string) (fs.FileInfo, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rfd)
	fd, err := unix.Openat2(rfd, rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH,
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: filepath.Join(root, rel), Err: err}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(root, rel))
	defer f.Close()
	return f.Stat()
}

// absent reports whether err means there is nothing at a path (or a
// symlink or non-directory is in the way).
func absent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV)
}

// isWhiteout reports whether info is an overlay whiteout: a character
// device 0/0.
func isWhiteout(info fs.FileInfo) bool {
	if info.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

// isOpaqueDir reports whether overlayfs marked the directory p opaque.
func isOpaqueDir(p string) bool {
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(p, opaqueXattr, buf)
	return err == nil && n > 0 && buf[0] == 'y'
}

// permBits are the permission, setuid, setgid and sticky bits of m.
func permBits(m fs.FileMode) fs.FileMode {
	return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// sameDirMode reports whether an upper directory's mode is the one beneath.
// venv gives each directory of the old version to the environment's user
// in the upper directory with the owner's rwx added and without the
// special bits; that is no change.
func sameDirMode(upper, lower fs.FileMode, fromBase bool) bool {
	return upper == lower || fromBase && upper == lower&fs.ModePerm|0o700
}

// sameContent reports whether two regular files hold the same bytes.
func sameContent(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		if absent(err) || errors.Is(err, fs.ErrPermission) {
			return false, nil
		}
		return false, err
	}
	defer fb.Close()
	const chunk = 64 << 10
	ba, bb := make([]byte, chunk), make([]byte, chunk)
	for {
		na, erra := io.ReadFull(fa, ba)
		nb, errb := io.ReadFull(fb, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		aEnd := errors.Is(erra, io.EOF) || errors.Is(erra, io.ErrUnexpectedEOF)
		bEnd := errors.Is(errb, io.EOF) || errors.Is(errb, io.ErrUnexpectedEOF)
		switch {
		case erra != nil && !aEnd:
			return false, erra
		case errb != nil && !bEnd:
			return false, nil // the host's file cannot be read: call it changed
		case aEnd || bEnd:
			return aEnd && bEnd, nil
		}
	}
}
