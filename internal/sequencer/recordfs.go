package sequencer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/appv/appv/internal/appvpkg"
)

// The recording file system is a read-only loopback over the staged tree
// that notes, for every read the kernel sends it, which 64 KiB blocks of
// which file it covers, and in which order files were first read.
//
// It is mounted as the client's streaming file system is (page cache on,
// no direct I/O, the same largest request and the kernel's default
// readahead), so what it sees is what a first launch from the client's
// store would fetch: reads by read(2), the pages the kernel reads to exec
// a binary, the pages that mmap faults bring in, and the readahead around
// all of them. The page cache serves repeated reads without asking it;
// only the first read of a page matters here. FUSE passthrough is off, or
// reads would bypass it.

// recordFSName is the file system's name in /proc/self/mountinfo
// ("fuse.appv-record").
const recordFSName = "appv-record"

// recordUnmountWait bounds how long unmounting waits for the kernel to let
// go of the file system.
const recordUnmountWait = 30 * time.Second

// recorder collects the reads. Its methods may be called from several
// goroutines at once.
type recorder struct {
	mu    sync.Mutex
	files map[string]*recordedFile // by path relative to the tree
	order []*recordedFile          // in the order of their first read
}

// recordedFile is what was read of one file.
type recordedFile struct {
	rel    string   // path relative to the tree, "/"-separated
	size   int64    // when it was first opened; the tree does not change
	blocks []uint64 // bitmap of the blocks read
	listed bool     // in recorder.order
}

func newRecorder() *recorder {
	return &recorder{files: make(map[string]*recordedFile)}
}

// file returns the record of the file rel, of the given size.
func (r *recorder) file(rel string, size int64) *recordedFile {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.files[rel]
	if f == nil {
		n := (max(size, 0) + appvpkg.BlockSize - 1) / appvpkg.BlockSize
		f = &recordedFile{rel: rel, size: size, blocks: make([]uint64, (n+63)/64)}
		r.files[rel] = f
	}
	return f
}

// note records a read of n bytes at off in f. The part beyond the end of
// the file is not data and is left out.
func (r *recorder) note(f *recordedFile, off int64, n int) {
	end := min(off+int64(n), f.size)
	if off < 0 || end <= off {
		return
	}
	first, last := off/appvpkg.BlockSize, (end-1)/appvpkg.BlockSize
	r.mu.Lock()
	defer r.mu.Unlock()
	if !f.listed {
		f.listed = true
		r.order = append(r.order, f)
	}
	for b := first; b <= last; b++ {
		f.blocks[b/64] |= 1 << (b % 64)
	}
}

// ranges returns the blocks read of f, sorted and coalesced.
func (f *recordedFile) ranges() []appvpkg.BlockRange {
	var out []appvpkg.BlockRange
	for i, w := range f.blocks {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			idx := i*64 + b
			if k := len(out) - 1; k >= 0 && out[k].Index+out[k].Count == idx {
				out[k].Count++
			} else {
				out = append(out, appvpkg.BlockRange{Index: idx, Count: 1})
			}
			w &^= 1 << b
		}
	}
	return out
}

// featureBlock lists the files read, as package paths (Root/...), in the
// order they were first read, each with the blocks read of it. A file
// whose name the stream map cannot hold is left out and logged.
func (r *recorder) featureBlock(log *slog.Logger) appvpkg.FeatureBlock {
	r.mu.Lock()
	defer r.mu.Unlock()
	var fb appvpkg.FeatureBlock
	for _, f := range r.order {
		name := appvpkg.RootDir + "/" + f.rel
		if err := fb.Add(name, f.ranges()...); err != nil {
			log.Warn("a file read at launch cannot be named in the stream map; left out", "file", name, "err", err)
		}
	}
	return fb
}

// recordNode is a loopback node whose files record their reads.
type recordNode struct {
	*fs.LoopbackNode
	rec *recorder
}

var (
	_ = (fs.NodeWrapChilder)((*recordNode)(nil))
	_ = (fs.NodeLookuper)((*recordNode)(nil))
	_ = (fs.NodeOpener)((*recordNode)(nil))
)

// WrapChild makes every node of the tree a recordNode.
func (n *recordNode) WrapChild(_ context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &recordNode{LoopbackNode: ops.(*fs.LoopbackNode), rec: n.rec}
}

// Lookup is the loopback's, but gives every path an inode of its own: the
// loopback shares one inode between hard links, and a read must be
// recorded under the name it was made through (each name is a file of its
// own in the package).
func (n *recordNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p := filepath.Join(n.RootData.Path, n.Path(nil), name)
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return nil, fs.ToErrno(err)
	}
	out.FromStat(&st)
	child := &fs.LoopbackNode{RootData: n.RootData}
	return n.NewInode(ctx, child, fs.StableAttr{Mode: st.Mode}), fs.OK
}

// Open opens the file as the loopback does and records its reads.
func (n *recordNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, _, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != fs.OK {
		return nil, 0, errno
	}
	lf, ok := fh.(*fs.LoopbackFile)
	if !ok {
		if r, ok := fh.(fs.FileReleaser); ok {
			_ = r.Release(ctx)
		}
		return nil, 0, syscall.EIO
	}
	if n.StableAttr().Mode&syscall.S_IFMT != syscall.S_IFREG {
		return &recordFile{lf: lf}, 0, fs.OK
	}
	var attr fuse.AttrOut
	if errno := lf.Getattr(ctx, &attr); errno != fs.OK {
		_ = lf.Release(ctx)
		return nil, 0, errno
	}
	f := n.rec.file(n.Path(nil), int64(attr.Size))
	// The tree does not change: the kernel may keep what it has cached.
	return &recordFile{lf: lf, rec: n.rec, file: f}, fuse.FOPEN_KEEP_CACHE, fs.OK
}

// recordFile is an open file that records its reads. It forwards to a
// loopback file, but deliberately not FUSE passthrough: reads must come
// here.
type recordFile struct {
	lf   *fs.LoopbackFile
	rec  *recorder     // nil: not recorded
	file *recordedFile // nil: not recorded
}

var (
	_ = (fs.FileReader)((*recordFile)(nil))
	_ = (fs.FileReleaser)((*recordFile)(nil))
	_ = (fs.FileGetattrer)((*recordFile)(nil))
	_ = (fs.FileLseeker)((*recordFile)(nil))
	_ = (fs.FileFlusher)((*recordFile)(nil))
)

// Read records the read and serves it from the staged file.
func (f *recordFile) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if f.rec != nil {
		f.rec.note(f.file, off, len(dest))
	}
	return f.lf.Read(ctx, dest, off)
}

// Release closes the staged file.
func (f *recordFile) Release(ctx context.Context) syscall.Errno { return f.lf.Release(ctx) }

// Getattr stats the staged file.
func (f *recordFile) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return f.lf.Getattr(ctx, out)
}

// Lseek serves SEEK_DATA and SEEK_HOLE.
func (f *recordFile) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return f.lf.Lseek(ctx, off, whence)
}

// Flush is called at each close of a descriptor.
func (f *recordFile) Flush(ctx context.Context) syscall.Errno { return f.lf.Flush(ctx) }

// recordFS is a mounted recording file system.
type recordFS struct {
	dir string // the mount point
	srv *fuse.Server
	rec *recorder
	log *slog.Logger

	unmountOnce sync.Once
	unmountErr  error
}

// mountRecordFS mounts a recording file system of tree at dir, read-only,
// for every user (the programs run as the user, the overlays over it as
// root).
func mountRecordFS(tree, dir string, log *slog.Logger) (*recordFS, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(tree, &st); err != nil {
		return nil, fmt.Errorf("sequencer: record: %w", err)
	}
	rec := newRecorder()
	root := &fs.LoopbackRoot{Path: tree, Dev: st.Dev}
	node := &recordNode{LoopbackNode: &fs.LoopbackNode{RootData: root}, rec: rec}
	root.RootNode = node
	long := time.Hour // the tree does not change while it is mounted
	logger := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	srv, err := fs.Mount(dir, node, &fs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther:  true,
			FsName:      recordFSName,
			Name:        recordFSName,
			Options:     []string{"ro", "nosuid", "nodev", "default_permissions"},
			DirectMount: true,
			// As the client's streaming file system: its largest request,
			// the kernel's readahead.
			MaxWrite: 1 << 20,
			// Passthrough would let reads bypass the recorder, and it
			// raises the stacking depth the overlays above count.
			DisabledCapabilities: fuse.CAP_PASSTHROUGH,
			Logger:               logger,
		},
		EntryTimeout:    &long,
		AttrTimeout:     &long,
		NegativeTimeout: &long,
		Logger:          logger,
	})
	if err != nil {
		return nil, fmt.Errorf("sequencer: record: mount the recording file system at %s: %w", dir, err)
	}
	log.Debug("recording file system mounted", "tree", tree, "dir", dir)
	return &recordFS{dir: dir, srv: srv, rec: rec, log: log}, nil
}

// unmount unmounts the file system and waits until it is no longer
// served. When it is busy it is detached lazily. It gives up waiting after
// recordUnmountWait, with an error. Later calls return the first one's
// error.
func (r *recordFS) unmount() error {
	r.unmountOnce.Do(func() { r.unmountErr = r.doUnmount() })
	return r.unmountErr
}

func (r *recordFS) doUnmount() error {
	done := make(chan error, 1)
	go func() {
		err := r.srv.Unmount()
		if err != nil {
			if derr := syscall.Unmount(r.dir, syscall.MNT_DETACH); derr != nil && !errors.Is(derr, syscall.EINVAL) {
				done <- fmt.Errorf("sequencer: record: unmount %s: %w", r.dir, errors.Join(err, derr))
				return
			}
			r.log.Warn("recording file system busy; detached lazily", "dir", r.dir, "err", err)
			r.srv.Wait()
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err == nil {
			r.log.Debug("recording file system unmounted", "dir", r.dir)
		}
		return err
	case <-time.After(recordUnmountWait):
		return fmt.Errorf("sequencer: record: unmount %s: still in use after %s", r.dir, recordUnmountWait)
	}
}
