package venv

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// overlayOptions are the options of every overlay besides its directories:
// the plainest overlayfs, relying on no feature of the filesystems below and
// keeping no state beyond the upper directory's files, whiteouts and opaque
// markers.
const overlayOptions = "index=off,metacopy=off,redirect_dir=off,xino=off"

// mounter builds the view of one environment inside the supervisor's mount
// namespace. Its methods run before the supervisor accepts requests, on one
// goroutine.
type mounter struct {
	log  *slog.Logger
	user User
	// stubDir holds the directories made up for targets missing on the
	// host; it lies in the root-only run directory.
	stubDir string
	nstub   int
	// fds are descriptors kept open until the view is complete.
	fds []int
}

// upperDirs are the opened copy-on-write directories of one layer.
type upperDirs struct{ upper, work int }

func (m *mounter) keep(fd int) int {
	m.fds = append(m.fds, fd)
	return fd
}

func (m *mounter) close() {
	for _, fd := range m.fds {
		unix.Close(fd)
	}
	m.fds = nil
}

// mountAll builds the view: every layer of layers mounted at its target.
func (m *mounter) mountAll(layers []Layer) error {
	defer m.close()
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("venv: make / private: %w", err)
	}
	// The copy-on-write directories live in the user's home: make and
	// open them as the user before anything is mounted over it.
	uppers := make(map[string]upperDirs)
	for _, l := range layers {
		if l.Upper == "" {
			continue
		}
		u, err := m.openUpper(l)
		if err != nil {
			return err
		}
		if err := m.populate(l, u); err != nil {
			return err
		}
		uppers[l.Target] = u
	}

	order := slices.Clone(layers)
	slices.SortStableFunc(order, func(a, b Layer) int { return cmp.Compare(depth(a.Target), depth(b.Target)) })

	// Parents first, each target walked when its turn comes, so that it is
	// seen through the layers above it. A target missing then gets made-up
	// parents from a stub overlay on its nearest existing ancestor, shared
	// with the later targets missing under the same ancestor.
	missing := make(map[string]bool)
	for i, l := range order {
		w, err := walk(l.Target)
		if err != nil {
			return fmt.Errorf("venv: layer %s: %w", l.Target, err)
		}
		if len(w.missing) > 0 {
			unix.Close(w.fd)
			missing[l.Target] = true
			rels := [][]string{w.missing}
			for _, later := range order[i+1:] {
				lw, err := walk(later.Target)
				if err != nil {
					continue // reported at its turn
				}
				unix.Close(lw.fd)
				if len(lw.missing) > 0 && lw.path == w.path {
					missing[later.Target] = true
					rels = append(rels, lw.missing)
				}
			}
			if err := m.mountStub(w.path, rels); err != nil {
				return err
			}
			if w, err = walk(l.Target); err != nil {
				return fmt.Errorf("venv: layer %s: %w", l.Target, err)
			}
			if len(w.missing) > 0 {
				unix.Close(w.fd)
				return fmt.Errorf("venv: layer %s: still missing after adding it", l.Target)
			}
		}
		m.keep(w.fd)
		if err := m.mountLayer(l, w.fd, w.path, missing[l.Target], uppers[l.Target]); err != nil {
			return err
		}
	}
	return nil
}

// openUpper makes (when missing) and opens a layer's upper and work
// directories as the user, and checks that the user owns them and that they
// share a filesystem.
func (m *mounter) openUpper(l Layer) (upperDirs, error) {
	var u upperDirs
	err := asUser(m.user, func() error {
		var sts [2]unix.Stat_t
		for i, p := range []string{l.Upper, l.Work} {
			if err := os.MkdirAll(p, 0o700); err != nil {
				return err
			}
			fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open %s: %w", p, err)
			}
			m.keep(fd)
			if err := unix.Fstat(fd, &sts[i]); err != nil {
				return fmt.Errorf("stat %s: %w", p, err)
			}
			if sts[i].Uid != m.user.UID {
				return fmt.Errorf("%s belongs to uid %d, not to the user (uid %d)", p, sts[i].Uid, m.user.UID)
			}
			if i == 0 {
				u.upper = fd
			} else {
				u.work = fd
			}
		}
		if sts[0].Dev != sts[1].Dev {
			return fmt.Errorf("upper %s and work %s are on different filesystems", l.Upper, l.Work)
		}
		return nil
	})
	if err != nil {
		return upperDirs{}, fmt.Errorf("venv: layer %s: copy-on-write directory: %w", l.Target, err)
	}
	return u, nil
}

// populate gives the user, in the upper directory, each directory of the
// layer's lowers, so that the package's directories are the user's inside
// the environment: overlayfs shows a directory present in both with the
// upper one's owner and mode, and a program can then create files in it.
// (Copied up on a first write instead, it would keep the package's owner,
// root.) Directories the lowers hide from each other (whiteouts, opaque
// directories) and those the user has deleted stay hidden. The package's
// files keep their owner.
func (m *mounter) populate(l Layer, u upperDirs) error {
	dirs, err := m.lowerDirs(l)
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		return nil
	}
	made := 0
	err = asUser(m.user, func() error {
		skipped := make(map[string]bool)
		skip := func(rel string) { skipped[rel] = true }
		for _, d := range dirs {
			if skippedBelow(skipped, d.rel) {
				continue
			}
			var st unix.Stat_t
			err := unix.Fstatat(u.upper, d.rel, &st, unix.AT_SYMLINK_NOFOLLOW)
			switch {
			case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
				if opaque(fdPath(u.upper) + "/" + d.rel) {
					skip(d.rel)
				}
				continue
			case err == nil:
				// A whiteout or a file the user put there instead.
				skip(d.rel)
				continue
			case !errors.Is(err, unix.ENOENT):
				return fmt.Errorf("stat %s: %w", d.rel, err)
			}
			if err := unix.Mkdirat(u.upper, d.rel, d.mode); err != nil {
				if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
					skip(d.rel) // under something that is not a directory
					continue
				}
				return fmt.Errorf("mkdir %s: %w", d.rel, err)
			}
			if err := unix.Fchmodat(u.upper, d.rel, d.mode, 0); err != nil {
				return fmt.Errorf("chmod %s: %w", d.rel, err)
			}
			made++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("venv: layer %s: copy-on-write directory %s: %w", l.Target, l.Upper, err)
	}
	if made > 0 {
		m.log.Debug("package directories given to the user", "target", l.Target, "upper", l.Upper, "made", made)
	}
	return nil
}

// skippedBelow reports whether rel lies below one of the skipped paths.
func skippedBelow(skipped map[string]bool, rel string) bool {
	for p := filepath.Dir(rel); p != "."; p = filepath.Dir(p) {
		if skipped[p] {
			return true
		}
	}
	return false
}

// lowerDir is a directory of a layer's merged lowers.
type lowerDir struct {
	rel  string // relative to the layer's root
	mode uint32 // its permissions, plus the owner's rwx
}

// lowerDirs lists the directories of a layer's lowers as overlayfs merges
// them, parents first: a whiteout, a non-directory or an opaque directory
// in a lower hides what the lowers after it have at and (for opaque
// directories) below that path.
func (m *mounter) lowerDirs(l Layer) ([]lowerDir, error) {
	var dirs []lowerDir
	seen := make(map[string]bool)
	masked := make(map[string]bool) // hidden, with everything below
	opaqued := make(map[string]bool)
	hidden := func(rel string) bool {
		for p := rel; p != "."; p = filepath.Dir(p) {
			if masked[p] || (p != rel && opaqued[p]) {
				return true
			}
		}
		return false
	}
	for _, lo := range l.Lower {
		fd, _, err := openDir(filepath.Clean(lo))
		if err != nil {
			return nil, fmt.Errorf("venv: layer %s: lower: %w", l.Target, err)
		}
		// The trailing slash follows the descriptor's magic link.
		root := fdPath(m.keep(fd)) + "/"
		newMasked := make(map[string]bool)
		newOpaqued := make(map[string]bool)
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil || rel == "." {
				return err
			}
			if hidden(rel) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.IsDir() {
				// A whiteout or any other non-directory hides the
				// lower lowers' entry at this path.
				newMasked[rel] = true
				return nil
			}
			if opaque(p) {
				newOpaqued[rel] = true
			}
			if seen[rel] {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			seen[rel] = true
			dirs = append(dirs, lowerDir{rel: rel, mode: uint32(info.Mode().Perm()) | 0o700})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("venv: layer %s: read lower %s: %w", l.Target, lo, err)
		}
		maps.Copy(masked, newMasked)
		maps.Copy(opaqued, newOpaqued)
	}
	// Parents before children, whichever lower they came from.
	slices.SortStableFunc(dirs, func(a, b lowerDir) int { return cmp.Compare(depth("/"+a.rel), depth("/"+b.rel)) })
	return dirs, nil
}

// opaque reports whether overlayfs marked a directory of an upper layer
// opaque (the user deleted the lower one and made a new one).
func opaque(path string) bool {
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(path, "trusted.overlay.opaque", buf)
	return err == nil && n > 0 && buf[0] == 'y'
}

// mountLayer mounts one layer at the directory fd refers to. wasMissing
// tells that the target is one of the stub's made-up directories, with no
// native contents.
func (m *mounter) mountLayer(l Layer, fd int, path string, wasMissing bool, u upperDirs) error {
	var lowers []string
	for _, lo := range l.Lower {
		lfd, _, err := openDir(filepath.Clean(lo))
		if err != nil {
			return fmt.Errorf("venv: layer %s: lower: %w", path, err)
		}
		lowers = append(lowers, fdPath(m.keep(lfd)))
	}
	native := l.Native && !wasMissing
	if native {
		lowers = append(lowers, fdPath(fd))
	}
	var subs []submount
	if native {
		var err error
		if subs, err = m.submounts(fd, path); err != nil {
			return fmt.Errorf("venv: layer %s: %w", path, err)
		}
	}
	target := fdPath(fd)
	switch {
	case l.Upper == "" && native && len(l.Lower) == 0:
		// Nothing but the native directory, read-write: nothing to do.
		return nil
	case l.Upper == "" && len(lowers) <= 1:
		// Overlayfs needs two lowers without an upper: bind the one.
		src := ""
		if len(lowers) == 1 {
			src = lowers[0]
		} else {
			empty, err := m.emptyDir()
			if err != nil {
				return err
			}
			src = fdPath(empty)
		}
		if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("venv: layer %s: bind %s: %w", path, l.Lower, err)
		}
		nfd, _, err := openDir(path)
		if err != nil {
			return fmt.Errorf("venv: layer %s: %w", path, err)
		}
		m.keep(nfd)
		if err := unix.Mount("", fdPath(nfd), "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return fmt.Errorf("venv: layer %s: make read-only: %w", path, err)
		}
		m.log.Debug("bind mounted", "target", path, "lower", l.Lower)
	default:
		if len(lowers) == 0 {
			empty, err := m.emptyDir()
			if err != nil {
				return err
			}
			lowers = []string{fdPath(empty)}
		}
		opts := "lowerdir=" + strings.Join(lowers, ":")
		flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
		if l.Upper != "" {
			opts += ",upperdir=" + fdPath(u.upper) + ",workdir=" + fdPath(u.work)
		} else {
			flags |= unix.MS_RDONLY
		}
		opts += "," + overlayOptions
		if err := unix.Mount("overlay", target, "overlay", flags, opts); err != nil {
			return fmt.Errorf("venv: layer %s: mount overlay (lower %q, native %v, upper %q): %w", path, l.Lower, native, l.Upper, err)
		}
		m.log.Debug("overlay mounted", "target", path, "lower", l.Lower, "native", native, "upper", l.Upper, "options", opts)
	}
	return m.rebind(path, subs)
}

// mountStub mounts, over the existing directory anc, a read-only overlay of
// a stub directory holding the missing paths rels (relative to anc) on top
// of anc itself, so that the missing directories appear inside the
// environment without being created on the host. The host's mounts below
// anc are mounted again on top. When a user, not root, owns anc (a directory
// in a home), its entries are bind-mounted back one by one so that they
// stay writable; only new entries directly in anc are refused (EROFS).
func (m *mounter) mountStub(anc string, rels [][]string) error {
	fd, path, err := openDir(anc)
	if err != nil {
		return fmt.Errorf("venv: stub for %s: %w", anc, err)
	}
	m.keep(fd)
	if path == "/" {
		return fmt.Errorf("venv: cannot add /%s: a new top-level directory would need an overlay over /", rels[0][0])
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("venv: stat %s: %w", path, err)
	}
	dir := filepath.Join(m.stubDir, strconv.Itoa(m.nstub))
	m.nstub++
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("venv: stub for %s: %w", path, err)
	}
	skip := make(map[string]bool)
	for _, rel := range rels {
		skip[rel[0]] = true
		p := dir
		for _, c := range rel {
			p = filepath.Join(p, c)
			if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("venv: stub for %s: %w", path, err)
			}
			if err := setOwnerMode(p, st.Uid, st.Gid, 0o755); err != nil {
				return fmt.Errorf("venv: stub for %s: %w", path, err)
			}
		}
	}
	// The overlay's root takes its owner and mode from the stub: copy anc's.
	if err := setOwnerMode(dir, st.Uid, st.Gid, st.Mode&0o7777); err != nil {
		return fmt.Errorf("venv: stub for %s: %w", path, err)
	}
	sfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("venv: stub for %s: %w", path, err)
	}
	m.keep(sfd)

	subs, err := m.submounts(fd, path)
	if err != nil {
		return fmt.Errorf("venv: stub for %s: %w", path, err)
	}
	var entries []submount
	if st.Uid != 0 {
		if entries, err = m.entries(fd, skip); err != nil {
			return fmt.Errorf("venv: stub for %s: %w", path, err)
		}
		// Entries are bound recursively, with the mounts below them.
		subs = slices.DeleteFunc(subs, func(s submount) bool {
			return slices.ContainsFunc(entries, func(e submount) bool { return under(s.path, e.path) })
		})
	}
	opts := "lowerdir=" + fdPath(sfd) + ":" + fdPath(fd) + "," + overlayOptions
	if err := unix.Mount("overlay", fdPath(fd), "overlay", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("venv: stub for %s: mount overlay: %w", path, err)
	}
	m.log.Debug("stub mounted", "target", path, "adds", rels, "options", opts, "rebound", len(entries)+len(subs))
	return m.rebind(path, append(entries, subs...))
}

// setOwnerMode gives p an owner and a mode regardless of the umask.
func setOwnerMode(p string, uid, gid uint32, mode uint32) error {
	if err := os.Lchown(p, int(uid), int(gid)); err != nil {
		return err
	}
	return unix.Fchmodat(unix.AT_FDCWD, p, mode, 0)
}

// emptyDir returns a descriptor of an empty, root-owned directory.
func (m *mounter) emptyDir() (int, error) {
	p := filepath.Join(m.stubDir, "empty")
	if err := os.MkdirAll(p, 0o755); err != nil {
		return -1, fmt.Errorf("venv: %w", err)
	}
	if err := unix.Chmod(p, 0o755); err != nil {
		return -1, fmt.Errorf("venv: %w", err)
	}
	fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("venv: open %s: %w", p, err)
	}
	return m.keep(fd), nil
}

// submount is something to mount again after a directory has been covered:
// a host mount below it, or one of its entries.
type submount struct {
	path string // where, with symlinks resolved
	fd   int    // O_PATH descriptor of what was there
	dir  bool
}

// submounts opens the mounts visible below the directory fd refers to
// (whose path is path), before it gets covered. Only the topmost are
// returned: rebinding them recursively brings those below.
func (m *mounter) submounts(fd int, path string) ([]submount, error) {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx); err != nil {
		return nil, fmt.Errorf("statx %s: %w", path, err)
	}
	if stx.Mask&unix.STATX_MNT_ID == 0 {
		return nil, fmt.Errorf("statx %s: no mount id (kernel too old)", path)
	}
	infos, err := readMountInfo()
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, mi := range infos {
		if mi.parent == stx.Mnt_id && under(mi.point, path) && mi.point != path {
			paths = append(paths, mi.point)
		}
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	// A mount below another candidate was covered by it: leave it hidden.
	paths = slices.DeleteFunc(paths, func(p string) bool {
		return slices.ContainsFunc(paths, func(q string) bool { return q != p && under(p, q) })
	})
	var subs []submount
	for _, p := range paths {
		sfd, err := unix.Openat2(unix.AT_FDCWD, p, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_NO_SYMLINKS,
		})
		if err != nil {
			m.log.Warn("cannot keep a mount visible", "mount", p, "err", err)
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstat(sfd, &st); err != nil {
			// A mount that cannot be stat'ed (a FUSE mount whose daemon
			// is gone: ENOTCONN) cannot be bound again either; it must
			// not stop the environment.
			unix.Close(sfd)
			m.log.Warn("cannot keep a mount visible", "mount", p, "err", err)
			continue
		}
		subs = append(subs, submount{path: p, fd: m.keep(sfd), dir: st.Mode&unix.S_IFMT == unix.S_IFDIR})
	}
	return subs, nil
}

// entries opens the directories and regular files directly in the
// directory fd refers to, except the names in skip.
func (m *mounter) entries(fd int, skip map[string]bool) ([]submount, error) {
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dfd), "dir")
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	var out []submount
	for _, e := range ents {
		if skip[e.Name()] {
			continue
		}
		efd, err := unix.Openat(fd, e.Name(), unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // gone meanwhile
		}
		var st unix.Stat_t
		if err := unix.Fstat(efd, &st); err != nil {
			unix.Close(efd)
			continue
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR, unix.S_IFREG:
			out = append(out, submount{path: e.Name(), fd: m.keep(efd), dir: st.Mode&unix.S_IFMT == unix.S_IFDIR})
		default:
			// Symlinks, sockets and pipes stay visible, read-only.
			unix.Close(efd)
		}
	}
	return out, nil
}

// rebind mounts what subs hold again at their places below base, now
// covered. A submount's path is absolute, or relative to base for entries.
func (m *mounter) rebind(base string, subs []submount) error {
	if len(subs) == 0 {
		return nil
	}
	bfd, _, err := openDir(base)
	if err != nil {
		return fmt.Errorf("venv: reopen %s: %w", base, err)
	}
	defer unix.Close(bfd)
	for _, s := range subs {
		rel := s.path
		if filepath.IsAbs(rel) {
			if rel, err = filepath.Rel(base, s.path); err != nil {
				return fmt.Errorf("venv: %w", err)
			}
		}
		tfd, err := unix.Openat2(bfd, rel, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH,
		})
		if err != nil {
			m.log.Warn("mount point hidden by a layer", "path", filepath.Join(base, rel), "err", err)
			continue
		}
		var st unix.Stat_t
		err = unix.Fstat(tfd, &st)
		if err == nil && (st.Mode&unix.S_IFMT == unix.S_IFDIR) != s.dir {
			err = errors.New("changed type")
		}
		if err == nil {
			err = unix.Mount(fdPath(s.fd), fdPath(tfd), "", unix.MS_BIND|unix.MS_REC, "")
		}
		unix.Close(tfd)
		if err != nil {
			return fmt.Errorf("venv: mount %s again over %s: %w", filepath.Join(base, rel), base, err)
		}
	}
	return nil
}

// mountInfo is one line of /proc/self/mountinfo.
type mountInfo struct {
	id, parent uint64
	point      string
}

func readMountInfo() ([]mountInfo, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMountInfo(f)
}

func parseMountInfo(f io.Reader) ([]mountInfo, error) {
	var out []mountInfo
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		id, err1 := strconv.ParseUint(fields[0], 10, 64)
		parent, err2 := strconv.ParseUint(fields[1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("mountinfo: bad line %q", sc.Text())
		}
		out = append(out, mountInfo{id: id, parent: parent, point: unescapeMountInfo(fields[4])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	return out, nil
}

// unescapeMountInfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountInfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
