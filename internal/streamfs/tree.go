package streamfs

import (
	"log/slog"
	"path"
	"sort"
	"syscall"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/store"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// entry is one node of a version's tree: a directory, file or symlink.
type entry struct {
	name     string
	ino      uint64
	mode     uint32 // syscall.S_IF* | permission and special bits
	size     int64
	mtime    time.Time
	target   string // symlink
	pkgPath  string // file: its package path
	children map[string]*entry
	names    []string // children, sorted
}

func (e *entry) isDir() bool { return e.mode&syscall.S_IFMT == syscall.S_IFDIR }

// versionTree is the tree of one stored version, built once from its
// block map and FilesystemMetadata.xml; contents are immutable.
type versionTree struct {
	v    *store.Version
	root *entry // the version directory: Root/ and the metadata parts
}

// unixMode turns an FSMode (07777) into st_mode permission bits.
func unixMode(m appvpkg.FSMode) uint32 { return uint32(m) & 0o7777 }

// buildTree builds the tree of v. Files come from the block map; their
// modes and times, symlinks and empty directories from the Linux entries
// of FilesystemMetadata.xml. Without them (Microsoft's packages)
// directories are 0755, files 0644, and every time is when the version was
// added.
func buildTree(v *store.Version, log *slog.Logger) *versionTree {
	added := v.Info().Added
	root := &entry{mode: syscall.S_IFDIR | 0o755, mtime: added, children: map[string]*entry{}}
	var dir func(p string) *entry
	dir = func(p string) *entry {
		if p == "" || p == "." {
			return root
		}
		parent := dir(path.Dir(p))
		name := path.Base(p)
		if c := parent.children[name]; c != nil {
			if c.isDir() {
				return c
			}
			log.Warn("package path is both a directory and something else; the directory wins", "path", p)
		}
		d := &entry{name: name, mode: syscall.S_IFDIR | 0o755, mtime: added, children: map[string]*entry{}}
		parent.children[name] = d
		return d
	}
	pkg := v.Package()
	meta := v.FSMetadata()
	for _, name := range v.Files() {
		f, err := pkg.File(name)
		if err != nil {
			continue
		}
		parent := dir(path.Dir(name))
		e := &entry{name: path.Base(name), mode: syscall.S_IFREG | 0o644, size: f.Size, mtime: added, pkgPath: name}
		if meta != nil {
			if me, ok := meta.Entry(name); ok && me.Type == appvpkg.FSFile {
				e.mode = syscall.S_IFREG | unixMode(me.Mode)
				if me.MTime != 0 {
					e.mtime = me.ModTime()
				}
			}
		}
		parent.children[e.name] = e
	}
	if meta != nil {
		for _, d := range meta.EmptyDirs {
			dir(d.Path)
		}
		for _, d := range meta.OpaqueDirs {
			dir(d.Path)
		}
		for _, me := range meta.Entries {
			switch me.Type {
			case appvpkg.FSDir:
				d := dir(me.Path)
				d.mode = syscall.S_IFDIR | unixMode(me.Mode)
				if me.MTime != 0 {
					d.mtime = me.ModTime()
				}
			case appvpkg.FSSymlink:
				parent := dir(path.Dir(me.Path))
				name := path.Base(me.Path)
				if parent.children[name] != nil {
					log.Warn("symlink shadows another entry; ignored", "path", me.Path)
					continue
				}
				mt := added
				if me.MTime != 0 {
					mt = me.ModTime()
				}
				parent.children[name] = &entry{name: name, mode: syscall.S_IFLNK | 0o777, size: int64(len(me.Target)), mtime: mt, target: me.Target}
			}
		}
	}
	sortNames(root)
	return &versionTree{v: v, root: root}
}

func sortNames(e *entry) {
	if !e.isDir() {
		return
	}
	e.names = make([]string, 0, len(e.children))
	for n, c := range e.children {
		e.names = append(e.names, n)
		sortNames(c)
	}
	sort.Strings(e.names)
}

// number gives every entry an inode number from next on, and returns the
// next free one.
func (e *entry) number(next uint64) uint64 {
	e.ino = next
	next++
	for _, n := range e.names {
		next = e.children[n].number(next)
	}
	return next
}

// fill sets a FUSE attribute from e.
func (e *entry) fill(a *fuse.Attr) {
	a.Ino = e.ino
	a.Mode = e.mode
	a.Size = uint64(e.size)
	a.Blocks = (uint64(e.size) + 511) / 512
	a.Blksize = appvpkg.BlockSize
	sec, nsec := uint64(e.mtime.Unix()), uint32(e.mtime.Nanosecond())
	if e.mtime.IsZero() {
		sec, nsec = 0, 0
	}
	a.Mtime, a.Mtimensec = sec, nsec
	a.Atime, a.Atimensec = sec, nsec
	a.Ctime, a.Ctimensec = sec, nsec
	a.Nlink = 1
	if e.isDir() {
		a.Nlink = 2
		for _, c := range e.children {
			if c.isDir() {
				a.Nlink++
			}
		}
	}
}
