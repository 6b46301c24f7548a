package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/catalog"
	"github.com/appv/appv/internal/config"
	"github.com/appv/appv/internal/events"
	"github.com/appv/appv/internal/fdpass"
	"github.com/appv/appv/internal/source"
	"github.com/appv/appv/internal/store"
	"github.com/appv/appv/internal/streamfs"
	"github.com/appv/appv/internal/venv"
)

// ServiceOptions wire the service.
type ServiceOptions struct {
	Config config.Config
	// Exe and SupervisorArgs start a virtual environment's supervisor: the
	// appv binary and its hidden verb.
	Exe            string
	SupervisorArgs []string
	// Stderr receives the service's log besides the event log.
	Stderr slog.Handler
}

// Service is the client service. It runs as root.
//
// Lock order: refresher.mu (one refresh at a time), then Service.mu, then
// the store's and the venv manager's own locks, the registry's and envMu
// (leaves).
type Service struct {
	cfg     config.Config
	opts    ServiceOptions
	store   *store.Store
	fs      *streamfs.Server
	venvs   *venv.Manager
	machine *catalog.Machine
	log     *events.Log
	admin   *slog.Logger
	ops     *slog.Logger
	vapp    *slog.Logger
	hideVFS string // overlay layer with a whiteout for Root/VFS

	mu     sync.Mutex                    // serializes lifecycle operations, as App-V's publishing agent does
	mounts map[string]context.CancelFunc // running mount operations by VersionId

	autoload chan *store.Version // background loading queue
	bg       sync.WaitGroup

	// sourceRoot is PackageSourceRoot, read by the store's goroutines when
	// they open a source; config set changes it.
	sourceRoot atomic.Pointer[string]

	// Publishing servers and upgrades (servers.go, refresh.go, upgrade.go).
	reg        *registry
	http       *http.Client // adds publishing servers' tokens (auth.go)
	refresher  *refresher
	kick       chan struct{}     // wakes the scheduler when registrations change
	pendingErr map[string]string // the last error of each failing pending task (under mu)
	gcDue      atomic.Bool       // something may have left an old version unreferenced
	envMu      sync.Mutex
	envVer     map[string]string // environment key -> the VersionId it started with
}

// NewService opens the store, mounts the streaming filesystem and prepares
// the virtual environments. Background work stops when ctx ends; Close
// unmounts.
func NewService(ctx context.Context, opts ServiceOptions) (*Service, error) {
	cfg := opts.Config
	for _, d := range []string{cfg.StateDir, cfg.PackageInstallationRoot, cfg.RunDir, cfg.MountDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	elog, err := events.Open(filepath.Join(cfg.StateDir, "events.jsonl"))
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, opts: opts, log: elog, mounts: map[string]context.CancelFunc{},
		kick: make(chan struct{}, 1), pendingErr: map[string]string{}, envVer: map[string]string{}}
	s.sourceRoot.Store(&cfg.PackageSourceRoot)
	s.admin = elog.Logger(events.Admin, opts.Stderr)
	s.ops = elog.Logger(events.Operational, opts.Stderr)
	s.vapp = elog.Logger(events.VirtualApplication, opts.Stderr)
	if s.machine, err = catalog.OpenMachine(cfg.StateDir); err != nil {
		return nil, err
	}
	if s.reg, err = openRegistry(filepath.Join(cfg.StateDir, "publishing")); err != nil {
		return nil, err
	}
	s.http = newHTTPClient(s.reg)
	s.refresher = &refresher{reg: s.reg, http: s.http, target: machineTarget{s}, admin: s.admin, ops: s.ops, apply: &s.mu}
	s.store, err = store.Open(ctx, cfg.PackageInstallationRoot, store.Options{
		Open:               s.openSource,
		Logger:             s.ops,
		SharedContentStore: cfg.SharedContentStoreMode,
	})
	if err != nil {
		return nil, err
	}
	if err := s.checkStore(ctx); err != nil {
		return nil, err
	}
	if s.fs, err = streamfs.Mount(ctx, cfg.MountDir, s.store, streamfs.Options{Logger: s.ops}); err != nil {
		return nil, err
	}
	if s.hideVFS, err = makeHideVFSLayer(filepath.Join(cfg.RunDir, "layers", "hide-vfs")); err != nil {
		_ = s.fs.Unmount()
		return nil, err
	}
	s.venvs, err = venv.NewManager(ctx, venv.Options{
		Exe: opts.Exe, Args: opts.SupervisorArgs, RunDir: filepath.Join(cfg.RunDir, "venv"), Logger: s.vapp,
	})
	if err != nil {
		_ = s.fs.Unmount()
		return nil, err
	}
	s.admin.Info("client service started", "store", cfg.PackageInstallationRoot, "mount", cfg.MountDir,
		"autoLoad", cfg.AutoLoad, "sharedContentStore", cfg.SharedContentStoreMode)
	s.startAutoLoad(ctx)
	s.startBackground(ctx)
	return s, nil
}

// openSource opens a package's content as the store does: moved by
// PackageSourceRoot, over the service's HTTP client (which adds publishing
// servers' tokens, auth.go).
func (s *Service) openSource(ctx context.Context, location string) (source.Source, error) {
	return source.Open(ctx, location, source.Options{SourceRoot: *s.sourceRoot.Load(), Logger: s.ops, HTTPClient: s.http})
}

// runningMarker is a file in the state directory that exists while the
// service runs; finding it at start means the last run did not end cleanly.
const runningMarker = "service.running"

// checkStore verifies every stored block against the block map when the
// last run ended uncleanly (killed, crashed, power lost), before anything is
// served from the store: a present bit always means verified data, and this
// proves it. Bad blocks are cleared and will be fetched again.
func (s *Service) checkStore(ctx context.Context) error {
	marker := filepath.Join(s.cfg.StateDir, runningMarker)
	if _, err := os.Stat(marker); err == nil {
		s.admin.Warn("the last run of the client service did not end cleanly; verifying the package store")
		for _, v := range s.store.Versions() {
			bad, err := v.Verify(ctx)
			p, ver := v.ID()
			if err != nil {
				return fmt.Errorf("client: verify %s/%s after an unclean shutdown: %w", p, ver, err)
			}
			s.admin.Info("store verified after an unclean shutdown", "package", identityOf(v).Name, "versionId", ver, "badBlocks", bad)
		}
	}
	if err := os.WriteFile(marker, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// makeHideVFSLayer makes an overlay layer holding a whiteout named VFS, so
// the package root's view does not show Root/VFS (those files appear at
// their native places instead).
func makeHideVFSLayer(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	wh := filepath.Join(dir, "VFS")
	if _, err := os.Lstat(wh); errors.Is(err, os.ErrNotExist) {
		if err := syscall.Mknod(wh, syscall.S_IFCHR, 0); err != nil {
			return "", fmt.Errorf("client: whiteout %s: %w", wh, err)
		}
	}
	return dir, nil
}

// Close stops the service: environments keep running, the filesystem is
// unmounted when they are gone.
func (s *Service) Close() error {
	s.mu.Lock()
	for _, cancel := range s.mounts {
		cancel()
	}
	s.mu.Unlock()
	s.bg.Wait()
	err := s.fs.Unmount()
	err = errors.Join(err, s.store.Close())
	if err == nil {
		_ = os.Remove(filepath.Join(s.cfg.StateDir, runningMarker))
	}
	s.admin.Info("client service stopped")
	return errors.Join(err, s.log.Close())
}

// Serve accepts connections on the configured socket until ctx ends.
func (s *Service) Serve(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(s.cfg.Socket), 0o755); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	_ = os.Remove(s.cfg.Socket)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.cfg.Socket, Net: "unix"})
	if err != nil {
		return fmt.Errorf("client: listen %s: %w", s.cfg.Socket, err)
	}
	// Every user may connect; what each may do is decided from the peer
	// credentials.
	if err := os.Chmod(s.cfg.Socket, 0o666); err != nil {
		l.Close()
		return fmt.Errorf("client: %w", err)
	}
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := l.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("client: accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			s.handle(ctx, conn)
		}()
	}
}

// caller is who is on the other end of a connection.
type caller struct {
	UID, GID  int
	Groups    []uint32
	PID       int
	Name      string
	Home      string
	DataHome  string
	CacheHome string
}

func (c caller) root() bool { return c.UID == 0 }

func peerCaller(conn *net.UnixConn, req *Request) (caller, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return caller{}, err
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return caller{}, err
	}
	if credErr != nil {
		return caller{}, credErr
	}
	c := caller{UID: int(cred.Uid), GID: int(cred.Gid), PID: int(cred.Pid)}
	u, err := user.LookupId(strconv.Itoa(c.UID))
	if err != nil {
		return caller{}, fmt.Errorf("uid %d has no account (%v); appv needs a home directory for the user's catalog", c.UID, err)
	}
	c.Name, c.Home = u.Username, u.HomeDir
	c.Groups = processGroups(c.PID, c.GID)
	// The XDG dirs the caller uses, when they are inside its home.
	inHome := func(p, def string) string {
		if p != "" && filepath.IsAbs(p) && strings.HasPrefix(filepath.Clean(p)+"/", c.Home+"/") {
			return filepath.Clean(p)
		}
		return filepath.Join(c.Home, def)
	}
	c.DataHome = inHome(req.DataHome, ".local/share")
	c.CacheHome = inHome(req.CacheHome, ".cache")
	return c, nil
}

// processGroups reads the supplementary groups of the calling process, so
// the application runs with the groups the user's session has.
func processGroups(pid, gid int) []uint32 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return []uint32{uint32(gid)}
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			var out []uint32
			for _, f := range strings.Fields(rest) {
				if n, err := strconv.ParseUint(f, 10, 32); err == nil {
					out = append(out, uint32(n))
				}
			}
			return out
		}
	}
	return []uint32{uint32(gid)}
}

// reply is how a handler talks back on its connection.
type reply struct {
	conn *net.UnixConn
	mu   sync.Mutex
}

func (r *reply) send(resp Response, files ...*os.File) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fdpass.Send(r.conn, resp, files...)
}

func (r *reply) progress(what string) func(done, total int64) {
	var last time.Time
	return func(done, total int64) {
		if time.Since(last) < 100*time.Millisecond && done < total {
			return
		}
		last = time.Now()
		_ = r.send(Response{Progress: &Progress{What: what, Done: done, Total: total}})
	}
}

func (r *reply) result(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		r.fail(&Error{Kind: KindFailed, Message: err.Error()})
		return
	}
	_ = r.send(Response{Result: data})
}

func (r *reply) fail(err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Kind: KindFailed, Message: err.Error()}
		if errors.Is(err, appvpkg.ErrFormat) {
			e.Kind = KindBadPackage
		}
	}
	_ = r.send(Response{Error: e})
}

func errf(kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

func (s *Service) handle(ctx context.Context, conn *net.UnixConn) {
	var req Request
	files, err := fdpass.Recv(conn, &req)
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	r := &reply{conn: conn}
	if err != nil {
		r.fail(errf(KindUsage, "bad request: %v", err))
		return
	}
	c, err := peerCaller(conn, &req)
	if err != nil {
		r.fail(errf(KindDenied, "cannot identify the caller: %v", err))
		return
	}
	switch req.Verb {
	case VerbAdd:
		s.handleAdd(ctx, c, req, r)
	case VerbPublish, VerbUnpublish:
		s.handlePublish(ctx, c, req, r)
	case VerbRemove:
		s.handleRemove(ctx, c, req, r)
	case VerbMount:
		s.handleMount(ctx, c, req, r)
	case VerbRepair:
		s.handleRepair(ctx, c, req, r)
	case VerbStop:
		s.handleStop(ctx, c, req, r)
	case VerbList:
		s.handleList(ctx, c, req, r)
	case VerbLaunch:
		s.handleLaunch(ctx, c, req, files, r)
	case VerbConfigGet, VerbConfigSet:
		s.handleConfig(ctx, c, req, r)
	case VerbEvents:
		s.handleEvents(ctx, c, req, r)
	case VerbServerAdd:
		s.handleServerAdd(ctx, c, req, r)
	case VerbServerSet:
		s.handleServerSet(ctx, c, req, r)
	case VerbServerRemove:
		s.handleServerRemove(ctx, c, req, r)
	case VerbServerList:
		s.handleServerList(ctx, c, req, r)
	case VerbSync:
		s.handleSync(ctx, c, req, r)
	default:
		r.fail(errf(KindUsage, "unknown verb %q", req.Verb))
	}
}
