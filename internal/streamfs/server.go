package streamfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/appv/appv/internal/store"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Options configure the file system.
type Options struct {
	// Logger receives the file system's records; nil discards them.
	Logger *slog.Logger
	// Debug logs every FUSE request (at debug level).
	Debug bool
	// DisablePassthrough serves fully local files through the daemon too,
	// as on kernels without FUSE passthrough (for comparisons).
	DisablePassthrough bool
}

// Stats count the file system's work.
type Stats struct {
	// PassthroughOpens counts opens of fully local files handed to the
	// kernel (FUSE passthrough): their reads never reach the daemon.
	PassthroughOpens int64
	// StreamOpens counts opens served through the store.
	StreamOpens int64
	// OpenFiles is the number of files open now (the kernel releases a
	// file shortly after its last close).
	OpenFiles int64
	// Reads and ReadBytes count read requests served through the store.
	Reads, ReadBytes int64
	// ReadErrors counts reads that failed (EIO, EINTR...).
	ReadErrors int64
	// FallbackReads counts reads of passthrough handles that reached the
	// daemon anyway (the kernel refused the backing file).
	FallbackReads int64
}

// Server is a mounted streaming file system.
type Server struct {
	st          *store.Store
	log         *slog.Logger
	dir         string
	fuse        *fuse.Server
	root        *fs.Inode
	passthrough atomic.Bool // set once the kernel's capabilities are known
	started     time.Time
	done        chan struct{}
	unmountOnce sync.Once
	unmountErr  error

	mu      sync.Mutex // guards trees, pkgInos and nextIno
	trees   map[*store.Version]*versionTree
	pkgInos map[string]uint64
	nextIno uint64

	stats struct {
		passthroughOpens, streamOpens, openFiles, reads, readBytes, readErrors, fallbackReads atomic.Int64
	}
}

// Mount mounts the versions of st at dir, read-only: every version at
// /<PackageId>/<VersionId>/, with its files under Root/ and its metadata
// parts beside it. Versions appear and disappear as they are added to and
// removed from st. The file system is served by goroutines that stop when
// it is unmounted: by Unmount, or when ctx ends.
func Mount(ctx context.Context, dir string, st *store.Store, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		st:      st,
		log:     log,
		dir:     dir,
		started: time.Now(),
		done:    make(chan struct{}),
		trees:   map[*store.Version]*versionTree{},
		pkgInos: map[string]uint64{},
		nextIno: 2, // 1 is the root
	}
	long := 24 * time.Hour
	fsOpts := &fs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther:           true,
			FsName:               "appv",
			Name:                 "appv",
			Options:              []string{"ro", "nosuid", "nodev", "default_permissions"},
			DirectMount:          true,
			EnableSymlinkCaching: true,
			MaxWrite:             1 << 20, // also the largest read request
			Debug:                opts.Debug,
			Logger:               slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		EntryTimeout:   &long,
		AttrTimeout:    &long,
		RootStableAttr: &fs.StableAttr{Ino: 1, Mode: syscall.S_IFDIR},
		Logger:         slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	root := &rootNode{srv: s}
	s.root = &root.Inode
	srv, err := fs.Mount(dir, root, fsOpts)
	if err != nil {
		return nil, fmt.Errorf("streamfs: mount %s: %w", dir, err)
	}
	s.fuse = srv
	if err := closeFuseOnExec(); err != nil {
		_ = srv.Unmount()
		return nil, fmt.Errorf("streamfs: mount %s: %w", dir, err)
	}
	switch {
	case opts.DisablePassthrough:
		log.Info("FUSE passthrough disabled; local files are read through the daemon")
	case srv.KernelSettings().Flags64()&fuse.CAP_PASSTHROUGH == 0:
		log.Warn("the kernel lacks FUSE passthrough; local files are read through the daemon")
	default:
		s.passthrough.Store(true)
	}
	go func() {
		select {
		case <-ctx.Done():
			if err := s.Unmount(); err != nil {
				log.Error("cannot unmount", "dir", dir, "err", err)
			}
		case <-s.done:
		}
	}()
	go func() {
		srv.Wait()
		close(s.done)
	}()
	log.Info("streaming file system mounted", "dir", dir, "passthrough", s.passthrough.Load())
	return s, nil
}

// Dir returns the mount point.
func (s *Server) Dir() string { return s.dir }

// Passthrough reports whether fully local files are opened with FUSE
// passthrough.
func (s *Server) Passthrough() bool { return s.passthrough.Load() }

// Unmount unmounts the file system and waits for its goroutines to end. If
// files are still open it detaches the mount lazily (MNT_DETACH): it
// disappears at once, and is served until the last file is closed.
func (s *Server) Unmount() error {
	s.unmountOnce.Do(func() {
		err := s.fuse.Unmount()
		if err != nil {
			if derr := syscall.Unmount(s.dir, syscall.MNT_DETACH); derr != nil {
				s.unmountErr = fmt.Errorf("streamfs: unmount %s: %w", s.dir, errors.Join(err, derr))
				return
			}
			s.log.Warn("file system busy; detached lazily", "dir", s.dir)
		}
		s.log.Info("streaming file system unmounted", "dir", s.dir)
	})
	return s.unmountErr
}

// Wait blocks until the file system is unmounted.
func (s *Server) Wait() { <-s.done }

// Stats returns the file system's counters.
func (s *Server) Stats() Stats {
	return Stats{
		PassthroughOpens: s.stats.passthroughOpens.Load(),
		StreamOpens:      s.stats.streamOpens.Load(),
		OpenFiles:        s.stats.openFiles.Load(),
		Reads:            s.stats.reads.Load(),
		ReadBytes:        s.stats.readBytes.Load(),
		ReadErrors:       s.stats.readErrors.Load(),
		FallbackReads:    s.stats.fallbackReads.Load(),
	}
}

// Refresh forgets the versions that were removed from the store and tells
// the kernel to drop their cached directory entries, so they disappear at
// once rather than within a second. Added versions need no refresh.
func (s *Server) Refresh() {
	current := map[*store.Version]bool{}
	pkgs := map[string]bool{}
	for _, v := range s.st.Versions() {
		current[v] = true
		pkgID, _ := v.ID()
		pkgs[pkgID] = true
	}
	var gone []*store.Version
	s.mu.Lock()
	for v := range s.trees {
		if !current[v] {
			gone = append(gone, v)
			delete(s.trees, v)
		}
	}
	s.mu.Unlock()
	for _, v := range gone {
		pkgID, verID := v.ID()
		if pkg := s.root.GetChild(pkgID); pkg != nil {
			_ = pkg.NotifyEntry(verID)
		}
		if !pkgs[pkgID] {
			_ = s.root.NotifyEntry(pkgID)
		}
	}
}

// tree returns the tree of v, building it on first use.
func (s *Server) tree(v *store.Version) *versionTree {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.trees[v]; t != nil {
		return t
	}
	t := buildTree(v, s.log)
	s.nextIno = t.root.number(s.nextIno)
	s.trees[v] = t
	return t
}

// pkgIno returns the inode number of a package directory.
func (s *Server) pkgIno(pkgID string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ino := s.pkgInos[pkgID]
	if ino == 0 {
		ino = s.nextIno
		s.nextIno++
		s.pkgInos[pkgID] = ino
	}
	return ino
}

// closeFuseOnExec marks this process's /dev/fuse descriptors close-on-exec.
// go-fuse (v2.12) opens /dev/fuse with syscall.Open, without O_CLOEXEC, and
// on a direct mount returns before it sets the flag, so every program the
// service starts afterwards (virtual environment supervisors, desktop
// tools) would inherit the connection. The kernel ends a FUSE connection
// when the last descriptor of it closes: with copies held elsewhere, a
// killed service would leave the applications' reads of the package waiting
// forever instead of failing.
func closeFuseOnExec() error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == "/dev/fuse" {
			syscall.CloseOnExec(fd)
		}
	}
	return nil
}
