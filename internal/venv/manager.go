package venv

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/appv/appv/internal/fdpass"
)

// Options configure a Manager.
type Options struct {
	// Exe is the binary whose SupervisorMain runs a supervisor; empty
	// means this process's own executable.
	Exe string
	// Args are the arguments that make Exe call SupervisorMain, e.g.
	// {"__venv-supervisor"}.
	Args []string
	// Env is the supervisor's environment; nothing else is passed on to
	// it (programs get their launch's environment, not this one).
	Env []string
	// RunDir holds one directory per environment with its socket and stub
	// directories, e.g. /run/appv/venv. It is made root-only (0700). Its
	// path must be short: a socket path has at most 107 bytes.
	RunDir string
	// Logger receives the Manager's records and its supervisors'; nil
	// discards them.
	Logger *slog.Logger
	// IdleGrace is how long a supervisor waits for another launch after
	// its last process has exited; 0 means 2 s.
	IdleGrace time.Duration
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL; 0
	// means 10 s.
	StopGrace time.Duration
}

// Manager starts and joins virtual environments. It is meant for the root
// service: supervisors run as root, and their sockets accept anyone who can
// reach them, which RunDir's mode restricts to root. Its methods may be
// called from several goroutines at once. There should be one Manager per
// RunDir.
//
// Goroutines: for each supervisor it starts or finds running, the Manager
// runs one goroutine that waits for the supervisor to exit and one that
// forwards its log records; both end when the supervisor exits, which it
// does on its own once its environment is empty. Each Process has one
// goroutine that ends when the program exits or its supervisor dies.
type Manager struct {
	opts Options
	log  *slog.Logger

	mu   sync.Mutex
	envs map[string]*envState // by key; an entry whose done is closed is stale
}

// envState is the Manager's record of one supervisor.
type envState struct {
	key  string
	dir  string
	sock string

	ready chan struct{} // closed once started (or failed to)
	err   error         // why it failed to start; set before ready closes
	uid   uint32        // set before ready closes
	pid   int           // the supervisor; set before ready closes
	// kill sends SIGKILL to the supervisor; set before ready closes.
	kill func()

	done chan struct{} // closed once the supervisor has exited and dir is gone
}

func (e *envState) exited() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// NewManager makes RunDir and returns a Manager. Environments whose
// supervisors are still running from an earlier Manager (a restarted
// service) are found through their sockets and joined by later launches;
// leftovers of dead ones are removed. ctx bounds that work only; the
// Manager keeps no goroutine of its own beyond those its environments need.
func NewManager(ctx context.Context, opts Options) (*Manager, error) {
	if opts.RunDir == "" || !filepath.IsAbs(opts.RunDir) {
		return nil, fmt.Errorf("venv: run directory %q is not an absolute path", opts.RunDir)
	}
	opts.RunDir = filepath.Clean(opts.RunDir)
	if n := len(filepath.Join(opts.RunDir, "k", socketName)) - 1 + maxKeyLen; n > 107 {
		return nil, fmt.Errorf("venv: run directory %s: too long for socket paths (%d bytes, at most 107)", opts.RunDir, n)
	}
	if opts.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("venv: find own executable: %w", err)
		}
		opts.Exe = exe
	}
	if opts.IdleGrace <= 0 {
		opts.IdleGrace = defaultIdleGrace
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = defaultStopGrace
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.RunDir, 0o700); err != nil {
		return nil, fmt.Errorf("venv: make run directory: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(opts.RunDir, &st); err != nil {
		return nil, fmt.Errorf("venv: run directory: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != uint32(os.Geteuid()) {
		return nil, fmt.Errorf("venv: run directory %s: not a directory owned by uid %d", opts.RunDir, os.Geteuid())
	}
	if err := os.Chmod(opts.RunDir, 0o700); err != nil {
		return nil, fmt.Errorf("venv: run directory: %w", err)
	}
	m := &Manager{opts: opts, log: log, envs: make(map[string]*envState)}
	if err := m.adopt(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// adopt finds supervisors left running by an earlier Manager and removes
// what dead ones left behind.
func (m *Manager) adopt(ctx context.Context) error {
	ents, err := os.ReadDir(m.opts.RunDir)
	if err != nil {
		return fmt.Errorf("venv: read run directory: %w", err)
	}
	for _, ent := range ents {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("venv: scan run directory: %w", err)
		}
		e := m.newEnv(ent.Name())
		var r reply
		err := m.roundTrip(ctx, e, request{Op: opStatus}, &r)
		if err != nil || r.Key != e.key || r.PID <= 0 || !validKey(e.key) {
			m.log.Debug("removing stale environment directory", "venv", ent.Name(), "err", err)
			if err := os.RemoveAll(e.dir); err != nil {
				m.log.Warn("remove stale environment directory", "venv", ent.Name(), "err", err)
			}
			continue
		}
		pidfd, err := unix.PidfdOpen(r.PID, 0)
		if err != nil {
			m.log.Warn("cannot watch supervisor", "venv", e.key, "pid", r.PID, "err", err)
			continue
		}
		var pmu sync.Mutex // guards pidfd against its closing
		e.uid, e.pid = r.UID, r.PID
		e.kill = func() {
			pmu.Lock()
			defer pmu.Unlock()
			if pidfd >= 0 {
				_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
			}
		}
		close(e.ready)
		m.envs[e.key] = e
		m.log.Info("found running environment", "venv", e.key, "supervisor", e.pid)
		go func() {
			// Readable once the supervisor has exited.
			fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
			for {
				if _, err := unix.Poll(fds, -1); !errors.Is(err, unix.EINTR) {
					break
				}
			}
			pmu.Lock()
			unix.Close(pidfd)
			pidfd = -1
			pmu.Unlock()
			m.finish(e)
		}()
	}
	return nil
}

func (m *Manager) newEnv(key string) *envState {
	dir := filepath.Join(m.opts.RunDir, key)
	return &envState{
		key:   key,
		dir:   dir,
		sock:  filepath.Join(dir, socketName),
		ready: make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// finish cleans up after a supervisor has exited.
func (m *Manager) finish(e *envState) {
	if err := os.RemoveAll(e.dir); err != nil {
		m.log.Warn("remove environment directory", "venv", e.key, "err", err)
	}
	m.mu.Lock()
	if m.envs[e.key] == e {
		delete(m.envs, e.key)
	}
	m.mu.Unlock()
	close(e.done)
}

// Launch starts req's program in the environment spec describes: it joins
// the environment when one with spec.Key runs (whatever its layers; the
// user must be the same), else starts its supervisor. It returns once the
// program has started; ctx bounds only that. Errors match fs.ErrNotExist
// (no such program), fs.ErrPermission (the user may not run it),
// ErrWrongUser and ErrStopping with errors.Is.
func (m *Manager) Launch(ctx context.Context, spec Spec, req Request) (*Process, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	for _, l := range spec.Layers {
		if under(l.Target, m.opts.RunDir) {
			return nil, fmt.Errorf("venv: spec %s: layer %s covers the run directory", spec.Key, l.Target)
		}
	}
	if len(req.Argv) == 0 || req.Argv[0] == "" {
		return nil, fmt.Errorf("venv: launch in %s: no program given", spec.Key)
	}
	for attempt := 0; ; attempt++ {
		e, err := m.env(ctx, spec)
		if err != nil {
			return nil, err
		}
		p, err := m.launchIn(ctx, e, spec, req)
		if errors.Is(err, errClosing) && attempt < 5 {
			// The supervisor was exiting: wait for it and start anew.
			m.log.Debug("supervisor was exiting; starting a new one", "venv", spec.Key, "err", err)
			select {
			case <-e.done:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("venv: launch %s in %s: %w", req.Argv[0], spec.Key, ctx.Err())
			}
		}
		return p, err
	}
}

// env returns the running supervisor for spec.Key, starting one if needed.
func (m *Manager) env(ctx context.Context, spec Spec) (*envState, error) {
	m.mu.Lock()
	e := m.envs[spec.Key]
	if e != nil && e.exited() {
		e = nil
	}
	if e == nil {
		e = m.newEnv(spec.Key)
		m.envs[spec.Key] = e
		m.mu.Unlock()
		e.err = m.start(ctx, e, spec)
		close(e.ready)
		if e.err != nil {
			return nil, e.err
		}
		return e, nil
	}
	m.mu.Unlock()
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("venv: launch in %s: %w", spec.Key, ctx.Err())
	}
	if e.err != nil {
		return nil, e.err
	}
	if e.uid != spec.User.UID {
		return nil, fmt.Errorf("venv: launch in %s: environment runs for uid %d, not uid %d: %w", spec.Key, e.uid, spec.User.UID, ErrWrongUser)
	}
	return e, nil
}

// start runs a supervisor for e and waits until its environment is ready.
// On failure e is finished (done closed) before start returns.
func (m *Manager) start(ctx context.Context, e *envState, spec Spec) (err error) {
	fail := func(err error) error {
		m.finish(e)
		return err
	}
	e.uid = spec.User.UID
	if err := os.RemoveAll(e.dir); err != nil {
		return fail(fmt.Errorf("venv: start %s: %w", e.key, err))
	}
	if err := os.Mkdir(e.dir, 0o700); err != nil {
		return fail(fmt.Errorf("venv: start %s: %w", e.key, err))
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("venv: start %s: socketpair: %w", e.key, err))
	}
	theirs := os.NewFile(uintptr(fds[1]), "venv-control")
	defer theirs.Close()
	ctl, err := fileConn(os.NewFile(uintptr(fds[0]), "venv-control"))
	if err != nil {
		theirs.Close()
		return fail(fmt.Errorf("venv: start %s: %w", e.key, err))
	}
	defer ctl.Close()
	logR, logW, err := os.Pipe()
	if err != nil {
		return fail(fmt.Errorf("venv: start %s: %w", e.key, err))
	}

	cmd := exec.Command(m.opts.Exe, m.opts.Args...)
	cmd.Env = slices.Clone(m.opts.Env)
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Dir = "/"
	cmd.Stderr = logW
	cmd.ExtraFiles = []*os.File{theirs} // descriptor 3
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A mount namespace of its own, private from the start; the rest
		// (IPC, network, PIDs) stays the host's: D-Bus and X11 work.
		Unshareflags: syscall.CLONE_NEWNS,
		Setsid:       true,
	}
	err = cmd.Start()
	logW.Close()
	theirs.Close()
	if err != nil {
		logR.Close()
		return fail(fmt.Errorf("venv: start supervisor %s for %s: %w", m.opts.Exe, e.key, err))
	}
	e.pid = cmd.Process.Pid
	e.kill = func() { _ = cmd.Process.Kill() }
	go m.forwardLog(e.key, e.pid, logR)
	go func() {
		err := cmd.Wait()
		m.log.Debug("supervisor exited", "venv", e.key, "pid", e.pid, "status", err)
		m.finish(e)
	}()
	// From here on the waiting goroutine finishes e.
	abort := func(err error) error {
		_ = cmd.Process.Kill()
		<-e.done
		return err
	}

	stop := context.AfterFunc(ctx, func() { _ = ctl.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := ctl.SetDeadline(time.Now().Add(setupTimeout)); err != nil {
		return abort(fmt.Errorf("venv: start %s: %w", e.key, err))
	}
	hostNS, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return abort(fmt.Errorf("venv: start %s: %w", e.key, err))
	}
	cfg := setupConfig{Spec: spec, Dir: e.dir, IdleGrace: m.opts.IdleGrace, HostNS: hostNS}
	if err := fdpass.Send(ctl, cfg); err != nil {
		return abort(fmt.Errorf("venv: start %s: %w", e.key, ctxErr(ctx, err)))
	}
	var rep setupReply
	files, err := fdpass.Recv(ctl, &rep)
	closeFiles(files)
	if err != nil {
		return abort(fmt.Errorf("venv: start %s: supervisor gave no answer: %w", e.key, ctxErr(ctx, err)))
	}
	if rep.Error != "" {
		return abort(fmt.Errorf("venv: start %s: %s", e.key, remoteText(rep.Error)))
	}
	m.log.Info("environment started", "venv", e.key, "supervisor", e.pid, "uid", spec.User.UID)
	return nil
}

// ctxErr prefers the context's error to the I/O error its cancellation
// caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// forwardLog turns a supervisor's JSON log lines into records of the
// Manager's logger, until the supervisor exits.
func (m *Manager) forwardLog(key string, pid int, r io.ReadCloser) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			m.log.Warn(sc.Text(), "venv", key, "supervisor", pid)
			continue
		}
		level := slog.LevelInfo
		if s, ok := rec["level"].(string); ok {
			_ = level.UnmarshalText([]byte(s))
		}
		msg, _ := rec["msg"].(string)
		attrs := []any{"supervisor", pid}
		keys := make([]string, 0, len(rec))
		for k := range rec {
			if k != "time" && k != "level" && k != "msg" {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			attrs = append(attrs, k, rec[k])
		}
		m.log.Log(context.Background(), level, msg, attrs...)
	}
}

func fileConn(f *os.File) (*net.UnixConn, error) {
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, errors.New("not a Unix socket")
	}
	return uc, nil
}

// dial connects to e's supervisor; errClosing when it is gone.
func (m *Manager) dial(ctx context.Context, e *envState) (*net.UnixConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", e.sock)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", errClosing, err)
	}
	return c.(*net.UnixConn), nil
}

// roundTrip sends one request without files and reads one reply.
func (m *Manager) roundTrip(ctx context.Context, e *envState, req request, r *reply) error {
	conn, err := m.dial(ctx, e)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := fdpass.Send(conn, req); err != nil {
		return ctxErr(ctx, err)
	}
	files, err := fdpass.Recv(conn, r)
	closeFiles(files)
	if hungUp(err) {
		return fmt.Errorf("%w: %w", errClosing, err)
	}
	return ctxErr(ctx, err)
}

// hungUp reports whether err says the supervisor closed the connection
// before answering: it was exiting (a connection still waiting to be
// accepted when the listener closes is reset), or it died.
func hungUp(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EPIPE)
}

// remoteText is an error a supervisor sent, without the package prefix
// the Manager's own wrapping adds again.
func remoteText(s string) string { return strings.TrimPrefix(s, "venv: ") }

// launchIn asks e's supervisor to start req's program.
func (m *Manager) launchIn(ctx context.Context, e *envState, spec Spec, req Request) (*Process, error) {
	name := req.Argv[0]
	wrap := func(err error) error {
		return fmt.Errorf("venv: launch %s in %s: %w", name, spec.Key, err)
	}
	var files []*os.File
	if !req.TTY {
		for _, f := range []*os.File{req.Stdin, req.Stdout, req.Stderr} {
			if f == nil {
				null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
				if err != nil {
					return nil, wrap(err)
				}
				defer null.Close()
				f = null
			}
			files = append(files, f)
		}
	}
	conn, err := m.dial(ctx, e)
	if err != nil {
		return nil, wrap(err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	r := request{
		Op: opLaunch, UID: spec.User.UID,
		Argv: req.Argv, Env: req.Env, Dir: req.Dir,
		TTY: req.TTY, Rows: req.Rows, Cols: req.Cols,
	}
	var rep reply
	var got []*os.File
	err = fdpass.Send(conn, r, files...)
	if err == nil {
		got, err = fdpass.Recv(conn, &rep)
	}
	if hungUp(err) {
		err = fmt.Errorf("%w: %w", errClosing, err)
	}
	if !stop() || err != nil {
		closeFiles(got)
		conn.Close()
		return nil, wrap(ctxErr(ctx, err))
	}
	if rep.Error != "" {
		closeFiles(got)
		conn.Close()
		return nil, wrap(&remoteError{msg: remoteText(rep.Error), kind: rep.Kind})
	}
	p := &Process{key: spec.Key, pid: rep.PID, conn: conn, done: make(chan struct{})}
	if req.TTY {
		if len(got) != 1 {
			closeFiles(got)
			conn.Close()
			return nil, wrap(errors.New("supervisor sent no terminal"))
		}
		p.master = got[0]
	} else {
		closeFiles(got)
	}
	m.log.Info("launched", "venv", spec.Key, "pid", p.pid, "argv", req.Argv, "tty", req.TTY)
	go p.watch(m.log)
	return p, nil
}

// alive returns the environments whose supervisors run.
func (m *Manager) alive() []*envState {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*envState
	for _, e := range m.envs {
		select {
		case <-e.ready:
			if e.err == nil && !e.exited() {
				out = append(out, e)
			}
		default:
		}
	}
	slices.SortFunc(out, func(a, b *envState) int { return cmpString(a.key, b.key) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (m *Manager) lookup(key string) *envState {
	for _, e := range m.alive() {
		if e.key == key {
			return e
		}
	}
	return nil
}

// Running lists the environments whose supervisors run, sorted by key,
// with their processes read from /proc. An environment whose last process
// has exited stays listed, with no PIDs, for the supervisor's idle grace.
func (m *Manager) Running() []Env {
	var out []Env
	for _, e := range m.alive() {
		out = append(out, Env{Key: e.key, Supervisor: e.pid, PIDs: members(e.pid)})
	}
	return out
}

// InUse reports whether any process runs in the environment key.
func (m *Manager) InUse(key string) bool {
	e := m.lookup(key)
	return e != nil && len(members(e.pid)) > 0
}

// Stop ends the environment key: SIGTERM to all its processes, SIGKILL to
// those left after Options.StopGrace. It returns once the supervisor has
// exited (and with it the mount namespace), or when ctx is done, after
// killing what is left with SIGKILL. Stopping an environment that does not
// run is not an error.
func (m *Manager) Stop(ctx context.Context, key string) error {
	e := m.lookup(key)
	if e == nil {
		return nil
	}
	m.log.Info("stopping environment", "venv", key, "supervisor", e.pid)
	var r reply
	err := m.roundTrip(ctx, e, request{Op: opStop, Grace: m.opts.StopGrace}, &r)
	if err == nil && r.Error != "" {
		err = errors.New(remoteText(r.Error))
	}
	if err != nil && !errors.Is(err, errClosing) {
		m.kill(e)
		return fmt.Errorf("venv: stop %s: %w", key, err)
	}
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		m.kill(e)
		return fmt.Errorf("venv: stop %s: %w", key, ctx.Err())
	}
}

// kill is Stop's last resort: SIGKILL to the environment's processes and
// its supervisor, without waiting.
func (m *Manager) kill(e *envState) {
	if e.exited() {
		return
	}
	n := signalAll(e.pid, unix.SIGKILL)
	e.kill()
	m.log.Warn("killed environment", "venv", e.key, "supervisor", e.pid, "processes", n)
}
