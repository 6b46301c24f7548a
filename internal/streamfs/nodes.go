package streamfs

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/store"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// topTimeout is how long the kernel may cache the package and version
// directories, which come and go as versions are added and removed.
// Everything below a version is immutable and cached for long.
const topTimeout = time.Second

// rootNode is the mount's root: one directory per package ID.
type rootNode struct {
	fs.Inode
	srv *Server
}

var (
	_ fs.NodeLookuper   = (*rootNode)(nil)
	_ fs.NodeReaddirer  = (*rootNode)(nil)
	_ fs.NodeGetattrer  = (*rootNode)(nil)
	_ fs.NodeLookuper   = (*pkgNode)(nil)
	_ fs.NodeReaddirer  = (*pkgNode)(nil)
	_ fs.NodeGetattrer  = (*pkgNode)(nil)
	_ fs.NodeLookuper   = (*dirNode)(nil)
	_ fs.NodeReaddirer  = (*dirNode)(nil)
	_ fs.NodeGetattrer  = (*dirNode)(nil)
	_ fs.NodeGetattrer  = (*fileNode)(nil)
	_ fs.NodeOpener     = (*fileNode)(nil)
	_ fs.NodeGetattrer  = (*linkNode)(nil)
	_ fs.NodeReadlinker = (*linkNode)(nil)

	_ fs.FileReader          = (*streamHandle)(nil)
	_ fs.FileReleaser        = (*streamHandle)(nil)
	_ fs.FileReader          = (*passthroughHandle)(nil)
	_ fs.FileReleaser        = (*passthroughHandle)(nil)
	_ fs.FilePassthroughFder = (*passthroughHandle)(nil)
)

func dirAttr(a *fuse.Attr, ino uint64, mtime time.Time) {
	a.Ino = ino
	a.Mode = syscall.S_IFDIR | 0o755
	a.Nlink = 2
	a.SetTimes(&mtime, &mtime, &mtime)
}

func (n *rootNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	dirAttr(&out.Attr, 1, n.srv.started)
	out.SetTimeout(topTimeout)
	return 0
}

func (n *rootNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	found := false
	for _, v := range n.srv.st.Versions() {
		if pkgID, _ := v.ID(); pkgID == name {
			found = true
			break
		}
	}
	if !found {
		return nil, syscall.ENOENT
	}
	ino := n.srv.pkgIno(name)
	dirAttr(&out.Attr, ino, n.srv.started)
	out.SetEntryTimeout(topTimeout)
	out.SetAttrTimeout(topTimeout)
	return n.NewInode(ctx, &pkgNode{srv: n.srv, pkgID: name}, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: ino}), 0
}

func (n *rootNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	var list []fuse.DirEntry
	seen := map[string]bool{}
	for _, v := range n.srv.st.Versions() {
		pkgID, _ := v.ID()
		if !seen[pkgID] {
			seen[pkgID] = true
			list = append(list, fuse.DirEntry{Name: pkgID, Mode: syscall.S_IFDIR, Ino: n.srv.pkgIno(pkgID)})
		}
	}
	return fs.NewListDirStream(list), 0
}

// pkgNode is a package's directory: one directory per version.
type pkgNode struct {
	fs.Inode
	srv   *Server
	pkgID string
}

func (n *pkgNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	dirAttr(&out.Attr, n.StableAttr().Ino, n.srv.started)
	out.SetTimeout(topTimeout)
	return 0
}

func (n *pkgNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	v, err := n.srv.st.Version(n.pkgID, name)
	if err != nil {
		return nil, syscall.ENOENT
	}
	if _, verID := v.ID(); verID != name {
		return nil, syscall.ENOENT // IDs are lower-case; names are exact
	}
	t := n.srv.tree(v)
	t.root.fill(&out.Attr)
	out.SetEntryTimeout(topTimeout)
	out.SetAttrTimeout(topTimeout)
	return n.srv.newNode(ctx, &n.Inode, t, t.root), 0
}

func (n *pkgNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	var list []fuse.DirEntry
	for _, v := range n.srv.st.Versions() {
		if pkgID, verID := v.ID(); pkgID == n.pkgID {
			list = append(list, fuse.DirEntry{Name: verID, Mode: syscall.S_IFDIR, Ino: n.srv.tree(v).root.ino})
		}
	}
	return fs.NewListDirStream(list), 0
}

// newNode returns the inode of entry e of tree t, a child of parent.
func (s *Server) newNode(ctx context.Context, parent *fs.Inode, t *versionTree, e *entry) *fs.Inode {
	var node fs.InodeEmbedder
	switch e.mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		node = &dirNode{srv: s, t: t, e: e}
	case syscall.S_IFLNK:
		node = &linkNode{e: e}
	default:
		node = &fileNode{srv: s, t: t, e: e}
	}
	return parent.NewInode(ctx, node, fs.StableAttr{Mode: e.mode & syscall.S_IFMT, Ino: e.ino})
}

// dirNode is a directory of a version.
type dirNode struct {
	fs.Inode
	srv *Server
	t   *versionTree
	e   *entry
}

func (n *dirNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.e.fill(&out.Attr)
	return 0
}

func (n *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	c := n.e.children[name]
	if c == nil {
		return nil, syscall.ENOENT
	}
	c.fill(&out.Attr)
	return n.srv.newNode(ctx, &n.Inode, n.t, c), 0
}

func (n *dirNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	list := make([]fuse.DirEntry, 0, len(n.e.names))
	for _, name := range n.e.names {
		c := n.e.children[name]
		list = append(list, fuse.DirEntry{Name: name, Mode: c.mode, Ino: c.ino})
	}
	return fs.NewListDirStream(list), 0
}

// linkNode is a symlink of a version.
type linkNode struct {
	fs.Inode
	e *entry
}

func (n *linkNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.e.fill(&out.Attr)
	return 0
}

func (n *linkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(n.e.target), 0
}

// fileNode is a file of a version.
//
// The kernel refuses (EIO) to open an inode in passthrough mode while it
// is open in cached mode and the other way round, so a file is opened with
// passthrough only when no cached-mode handle is open, and always with
// passthrough while a passthrough handle is open.
type fileNode struct {
	fs.Inode
	srv *Server
	t   *versionTree
	e   *entry

	mu          sync.Mutex // guards the fields below
	ptOpens     int        // open passthrough handles
	streamOpens int        // open cached-mode handles
	ptPath      string     // sparse file of the open passthrough handles
}

func (n *fileNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.e.fill(&out.Attr)
	return 0
}

func (n *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	v := n.t.v
	if err := v.Acquire(); err != nil {
		return nil, 0, syscall.ENOENT // removed meanwhile
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv.passthrough.Load() && n.streamOpens == 0 {
		p := n.ptPath
		if n.ptOpens == 0 {
			p, _ = v.LocalPath(n.e.pkgPath)
		}
		if p != "" {
			f, err := os.Open(p)
			if err == nil {
				n.ptOpens++
				n.ptPath = p
				n.srv.stats.passthroughOpens.Add(1)
				n.srv.stats.openFiles.Add(1)
				return &passthroughHandle{n: n, f: f}, fuse.FOPEN_KEEP_CACHE, 0
			}
			n.srv.log.Warn("cannot open local file for passthrough", "file", n.e.pkgPath, "err", err)
		}
	}
	n.streamOpens++
	n.srv.stats.streamOpens.Add(1)
	n.srv.stats.openFiles.Add(1)
	return &streamHandle{n: n}, fuse.FOPEN_KEEP_CACHE, 0
}

// streamHandle reads through the store, which faults missing blocks in.
type streamHandle struct {
	n *fileNode
}

func (h *streamHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	s := h.n.srv
	s.stats.reads.Add(1)
	n, err := h.n.t.v.ReadAt(ctx, h.n.e.pkgPath, dest, off)
	// Only the bare io.EOF the store returns at the end of a file is an end
	// of file. A fetch failure may wrap io.EOF (a server that closed the
	// connection): that is an I/O error, never a short file.
	if err != nil && err != io.EOF { //nolint:errorlint // identity is the point
		s.stats.readErrors.Add(1)
		s.log.Warn("read failed", "file", h.n.e.pkgPath, "offset", off, "len", len(dest), "err", err)
		return nil, toErrno(err)
	}
	s.stats.readBytes.Add(int64(n))
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *streamHandle) Release(ctx context.Context) syscall.Errno {
	h.n.mu.Lock()
	h.n.streamOpens--
	h.n.mu.Unlock()
	h.n.srv.stats.openFiles.Add(-1)
	h.n.t.v.Release()
	return 0
}

// passthroughHandle is a fully local file: the kernel reads its sparse
// file directly. Read serves the (rare) case where the kernel did not take
// the backing file.
type passthroughHandle struct {
	n *fileNode
	f *os.File
}

func (h *passthroughHandle) PassthroughFd() (int, bool) {
	return int(h.f.Fd()), true
}

func (h *passthroughHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	s := h.n.srv
	s.stats.fallbackReads.Add(1)
	n, err := h.f.ReadAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		s.stats.readErrors.Add(1)
		return nil, toErrno(err)
	}
	s.stats.readBytes.Add(int64(n))
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *passthroughHandle) Release(ctx context.Context) syscall.Errno {
	_ = h.f.Close()
	h.n.mu.Lock()
	h.n.ptOpens--
	if h.n.ptOpens == 0 {
		h.n.ptPath = ""
	}
	h.n.mu.Unlock()
	h.n.srv.stats.openFiles.Add(-1)
	h.n.t.v.Release()
	return 0
}

// toErrno turns a store error into the errno a reader sees: EINTR for an
// interrupted read, ESTALE for a version removed meanwhile, ENOENT for a
// file that is not there, EIO for everything else (a block that failed
// verification, a network failure). It is only used here, at the FUSE
// boundary.
func toErrno(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return syscall.EINTR
	case errors.Is(err, store.ErrClosed):
		return syscall.ESTALE
	case errors.Is(err, appvpkg.ErrNotFound), errors.Is(err, store.ErrNotFound):
		return syscall.ENOENT
	}
	return syscall.EIO
}
