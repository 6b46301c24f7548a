package venv

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/appv/appv/internal/fdpass"
)

const (
	// controlFD is the descriptor on which a supervisor meets its Manager.
	controlFD = 3

	defaultIdleGrace = 2 * time.Second
	defaultStopGrace = 10 * time.Second
	setupTimeout     = time.Minute
	requestTimeout   = 30 * time.Second
	replyTimeout     = 10 * time.Second
	socketName       = "sock"
)

// SupervisorMain is the body of a supervisor process, which the Manager
// starts as Options.Exe with Options.Args in a new mount namespace. The
// command wires a hidden verb to it; args (the verb's arguments) are
// reserved and ignored. It returns the process's exit code: 0 when the
// environment ended because its last process exited or it was stopped, 1
// when it could not be set up (the Manager reports why).
//
// The supervisor reads its Spec from descriptor 3, makes / private,
// listens on its socket, mounts the layers and answers the Manager; then it
// starts programs on request, as the user, and reports their exits. SIGTERM
// makes it stop its environment (as Manager.Stop does) and exit. It logs
// JSON records on its standard error, which the Manager forwards to its
// logger.
func SupervisorMain(args []string) int {
	_ = args
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := startSupervisor(log)
	if err != nil {
		log.Error("supervisor setup failed", "err", err)
		return 1
	}
	return s.run()
}

// supervisor serves one environment from inside its mount namespace.
//
// Goroutines: run (the caller's) reaps children and decides when to exit;
// one accepts connections until the listener closes; one handles each
// connection until its request is answered (for a launch: until the
// program has exited); a launch's handler starts one more that reads
// signal requests and ends when the handler closes the connection.
type supervisor struct {
	log       *slog.Logger
	spec      Spec
	idleGrace time.Duration
	ln        *net.UnixListener
	sigchld   chan os.Signal
	sigterm   chan os.Signal
	wake      chan struct{} // pokes run when busy changes

	wg sync.WaitGroup // the accept loop and the connection handlers

	mu       sync.Mutex // guards the fields below; reaping holds it
	children map[int]*child
	// descendants tells whether the last wait4 found processes left:
	// children not yet exited, or orphans handed to this subreaper.
	descendants bool
	busy        int  // connections being handled
	closing     bool // the listener is closed; refuse what comes
	stopping    bool // Stop is killing everything; refuse launches
}

// child is a program started for a launch, until it is reaped.
type child struct {
	exited chan struct{} // closed once status is set
	status unix.WaitStatus
}

// startSupervisor takes the configuration from the Manager, sets up the
// environment and answers.
func startSupervisor(log *slog.Logger) (*supervisor, error) {
	// Descriptors the service inherited without close-on-exec came along;
	// none may reach a program.
	if err := markCloseOnExec(controlFD); err != nil {
		return nil, fmt.Errorf("venv: supervisor: %w", err)
	}
	f := os.NewFile(controlFD, "venv-control")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("venv: supervisor: descriptor %d is not the Manager's socket: %w", controlFD, err)
	}
	ctl, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("venv: supervisor: descriptor %d is not a Unix socket", controlFD)
	}
	defer ctl.Close()
	if err := ctl.SetDeadline(time.Now().Add(setupTimeout)); err != nil {
		return nil, fmt.Errorf("venv: supervisor: %w", err)
	}
	var cfg setupConfig
	files, err := fdpass.Recv(ctl, &cfg)
	closeFiles(files)
	if err != nil {
		return nil, fmt.Errorf("venv: supervisor: read configuration: %w", err)
	}
	log = log.With("venv", cfg.Spec.Key)
	s, err := setupSupervisor(cfg, log)
	rep := setupReply{PID: os.Getpid()}
	if err != nil {
		rep = setupReply{Error: err.Error()}
	}
	if serr := fdpass.Send(ctl, rep); serr != nil && err == nil {
		s.ln.Close()
		err = fmt.Errorf("venv: supervisor: answer the Manager: %w", serr)
	}
	return s, err
}

func setupSupervisor(cfg setupConfig, log *slog.Logger) (*supervisor, error) {
	if err := cfg.Spec.validate(); err != nil {
		return nil, err
	}
	if cfg.IdleGrace <= 0 {
		cfg.IdleGrace = defaultIdleGrace
	}
	if ns, err := os.Readlink("/proc/self/ns/mnt"); err != nil || ns == cfg.HostNS {
		return nil, fmt.Errorf("venv: supervisor: not in a mount namespace of its own (%s, %v)", ns, err)
	}
	// Orphaned descendants come to the supervisor, which then knows when
	// the environment's last process is gone.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("venv: set child subreaper: %w", err)
	}
	s := &supervisor{
		log:       log,
		spec:      cfg.Spec,
		idleGrace: cfg.IdleGrace,
		sigchld:   make(chan os.Signal, 1),
		sigterm:   make(chan os.Signal, 1),
		wake:      make(chan struct{}, 1),
		children:  make(map[int]*child),
	}
	signal.Notify(s.sigchld, syscall.SIGCHLD)
	signal.Notify(s.sigterm, syscall.SIGTERM)

	// Listen before mounting anything: the socket must be made on the
	// host's file system, where the Manager connects.
	sock := filepath.Join(cfg.Dir, socketName)
	unix.Umask(0o077)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	// Programs start with the usual umask.
	unix.Umask(0o022)
	if err != nil {
		return nil, fmt.Errorf("venv: listen: %w", err)
	}
	s.ln = ln
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("venv: listen: %w", err)
	}
	m := &mounter{log: log, user: cfg.Spec.User, stubDir: filepath.Join(cfg.Dir, "stub")}
	if err := m.mountAll(cfg.Spec.Layers); err != nil {
		ln.Close()
		return nil, err
	}
	log.Info("environment ready", "uid", cfg.Spec.User.UID, "layers", len(cfg.Spec.Layers))
	return s, nil
}

// run serves requests until the environment is empty: no program and no
// descendant left, no connection being handled, for idleGrace (at once
// after a stop).
func (s *supervisor) run() int {
	s.wg.Add(1)
	go s.acceptLoop()
	timer := time.NewTimer(s.idleGrace)
	armed := true
	for {
		select {
		case <-s.sigchld:
			s.reap()
		case <-s.sigterm:
			// The service is going down: take the environment with it.
			s.log.Info("terminated: stopping the environment")
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if err := s.terminate(0); err != nil {
					s.log.Error("stop", "err", err)
				}
				s.poke()
			}()
		case <-s.wake:
		case <-timer.C:
			armed = false
			if s.closeIfIdle() {
				s.wg.Wait()
				signal.Stop(s.sigchld)
				signal.Stop(s.sigterm)
				s.log.Info("environment ended: no process left")
				return 0
			}
		}
		idle, grace := s.idleState()
		switch {
		case idle && !armed:
			timer.Reset(grace)
			armed = true
		case !idle && armed:
			timer.Stop()
			armed = false
		}
	}
}

func (s *supervisor) idleState() (idle bool, grace time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	grace = s.idleGrace
	if s.stopping {
		grace = 0
	}
	return s.busy == 0 && len(s.children) == 0 && !s.descendants, grace
}

// closeIfIdle closes the listener when the environment is still idle.
func (s *supervisor) closeIfIdle() bool {
	s.mu.Lock()
	idle := s.busy == 0 && len(s.children) == 0 && !s.descendants
	if idle {
		s.closing = true
	}
	s.mu.Unlock()
	if idle {
		// Unlinks the socket: the Manager starts a new supervisor next
		// time, once this process has exited.
		s.ln.Close()
	}
	return idle
}

func (s *supervisor) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// reap collects every child that has exited, programs and orphans alike.
func (s *supervisor) reap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ECHILD):
			s.descendants = false
			return
		case err != nil:
			s.log.Error("wait4", "err", err)
			return
		case pid == 0:
			s.descendants = true
			return
		}
		if c := s.children[pid]; c != nil {
			c.status = ws
			delete(s.children, pid)
			close(c.exited)
		} else {
			s.log.Debug("orphan reaped", "pid", pid, "code", exitCode(ws))
		}
	}
}

func (s *supervisor) acceptLoop() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Error("accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		closing := s.closing
		if !closing {
			s.busy++
		}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conn.Close()
			if closing {
				s.refuseClosing(conn)
				return
			}
			defer func() {
				s.mu.Lock()
				s.busy--
				s.mu.Unlock()
				s.poke()
			}()
			s.handle(conn)
		}()
	}
}

// readRequest reads a connection's request, with a deadline.
func (s *supervisor) readRequest(conn *net.UnixConn) (request, []*os.File, error) {
	var req request
	if err := conn.SetReadDeadline(time.Now().Add(requestTimeout)); err != nil {
		return req, nil, err
	}
	files, err := fdpass.Recv(conn, &req)
	if err != nil {
		return req, nil, err
	}
	return req, files, conn.SetReadDeadline(time.Time{})
}

// refuseClosing answers a request that came in while the supervisor exits.
func (s *supervisor) refuseClosing(conn *net.UnixConn) {
	_, files, err := s.readRequest(conn)
	closeFiles(files)
	if err == nil {
		s.send(conn, reply{Error: "supervisor is exiting", Kind: kindClosing})
	}
}

func (s *supervisor) handle(conn *net.UnixConn) {
	req, files, err := s.readRequest(conn)
	defer closeFiles(files)
	if err != nil {
		s.log.Warn("bad request", "err", err)
		return
	}
	switch req.Op {
	case opLaunch:
		s.launch(conn, req, files)
	case opStop:
		s.stop(conn, req)
	case opStatus:
		s.send(conn, reply{Key: s.spec.Key, UID: s.spec.User.UID, PID: os.Getpid()})
	default:
		s.send(conn, reply{Error: fmt.Sprintf("unknown operation %q", req.Op), Kind: kindInvalid})
	}
}

func (s *supervisor) send(conn *net.UnixConn, r reply, files ...*os.File) {
	if err := conn.SetWriteDeadline(time.Now().Add(replyTimeout)); err != nil {
		s.log.Warn("reply", "err", err)
		return
	}
	if err := fdpass.Send(conn, r, files...); err != nil {
		s.log.Warn("reply", "err", err)
	}
}

// launch starts a program and reports its exit.
func (s *supervisor) launch(conn *net.UnixConn, req request, files []*os.File) {
	fail := func(kind string, err error) {
		s.log.Info("launch refused", "argv", req.Argv, "err", err)
		s.send(conn, reply{Error: err.Error(), Kind: kind})
	}
	u := s.spec.User
	if req.UID != u.UID {
		fail(kindUser, fmt.Errorf("environment %s belongs to uid %d, not uid %d", s.spec.Key, u.UID, req.UID))
		return
	}
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		fail(kindStopping, fmt.Errorf("environment %s is stopping", s.spec.Key))
		return
	}
	if len(req.Argv) == 0 {
		fail(kindInvalid, errors.New("no program given"))
		return
	}

	var stdio []*os.File
	var master *os.File
	if req.TTY {
		m, sl, err := openPTY(u, req.Rows, req.Cols)
		if err != nil {
			fail("", err)
			return
		}
		master = m
		defer master.Close()
		defer sl.Close()
		stdio = []*os.File{sl, sl, sl}
	} else {
		if len(files) != 3 {
			fail(kindInvalid, fmt.Errorf("got %d files, want standard input, output and error", len(files)))
			return
		}
		stdio = files
	}

	env := buildEnv(req.Env, s.spec.Env, u)
	var path, dir, notice string
	err := asUser(u, func() error {
		dir, notice = chooseDir(req.Dir, u)
		var err error
		path, err = lookPath(req.Argv[0], dir, env)
		return err
	})
	if err != nil {
		var ee *execError
		kind := ""
		if errors.As(err, &ee) {
			kind = ee.kind
		}
		fail(kind, fmt.Errorf("%w (as uid %d)", err, u.UID))
		return
	}
	if notice != "" {
		s.log.Info("working directory", "notice", notice)
		fmt.Fprintf(stdio[2], "appv: %s\n", notice)
	}

	pid, c, err := s.spawn(path, req.Argv, env, dir, stdio, req.TTY)
	if err != nil {
		fail(kindOf(err), fmt.Errorf("start %s (as uid %d): %w", path, u.UID, err))
		return
	}
	// The program has its own copies now; the caller must see end of file
	// and the terminal hang up when it (and what it started) is done.
	closeFiles(stdio)
	s.log.Info("program started", "pid", pid, "path", path, "tty", req.TTY)
	if master != nil {
		s.send(conn, reply{PID: pid}, master)
		master.Close()
	} else {
		s.send(conn, reply{PID: pid})
	}

	go func() {
		for {
			var m request
			files, err := fdpass.Recv(conn, &m)
			closeFiles(files)
			if err != nil {
				return // the connection is closed: the caller left, or we are done
			}
			if m.Op == opSignal {
				s.signal(pid, unix.Signal(m.Signal))
			}
		}
	}()

	<-c.exited
	code := exitCode(c.status)
	s.log.Info("program exited", "pid", pid, "code", code)
	s.send(conn, reply{Exited: true, PID: pid, Code: code})
}

// spawn starts a program as the environment's user, in a session of its
// own, with no_new_privs, and registers it before it can be reaped.
func (s *supervisor) spawn(path string, argv, env []string, dir string, stdio []*os.File, tty bool) (int, *child, error) {
	u := s.spec.User
	attr := &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []uintptr{stdio[0].Fd(), stdio[1].Fd(), stdio[2].Fd()},
		Sys: &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups},
			Setsid:     true,
			Setctty:    tty,
			Ctty:       0,
		},
	}
	var pid int
	var c *child
	err := withNoNewPrivs(func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		var err error
		if pid, err = syscall.ForkExec(path, argv, attr); err != nil {
			return err
		}
		c = &child{exited: make(chan struct{})}
		s.children[pid] = c
		s.descendants = true
		return nil
	})
	runtime.KeepAlive(stdio)
	return pid, c, err
}

// signal sends sig to a program's process group (it leads its own session)
// while it has not been reaped, so that its id cannot have been reused.
func (s *supervisor) signal(pid int, sig unix.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.children[pid] == nil {
		return
	}
	if err := unix.Kill(-pid, sig); err != nil {
		_ = unix.Kill(pid, sig)
	}
	s.log.Info("signalled", "pid", pid, "signal", sig)
}

// empty reports whether every process of the environment has been reaped.
func (s *supervisor) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.children) == 0 && !s.descendants
}

// stop ends every process of the environment and answers once they are
// gone.
func (s *supervisor) stop(conn *net.UnixConn, req request) {
	if err := s.terminate(req.Grace); err != nil {
		s.send(conn, reply{Error: err.Error()})
		return
	}
	s.send(conn, reply{})
}

// terminate ends every process of the environment: SIGTERM, then SIGKILL
// after the grace period (0 means the default). Launches are refused from
// now on. It returns once every process is gone.
func (s *supervisor) terminate(grace time.Duration) error {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	if grace <= 0 {
		grace = defaultStopGrace
	}
	me := os.Getpid()
	n := signalAll(me, unix.SIGTERM)
	s.log.Info("stopping", "signalled", n, "grace", grace)
	deadline := time.Now().Add(grace)
	for !s.empty() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; !s.empty() && i < 500; i++ {
		if i%10 == 0 {
			n := signalAll(me, unix.SIGKILL)
			s.log.Info("killing", "signalled", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !s.empty() {
		return errors.New("venv: stop: processes survived SIGKILL")
	}
	return nil
}

// exitCode is a program's exit code, or 128+signal when a signal ended it.
func exitCode(ws unix.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 255
}

// markCloseOnExec sets close-on-exec on every descriptor from first up.
func markCloseOnExec(first int) error {
	err := unix.CloseRange(uint(first), math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	// Kernels before 5.11: one by one.
	ents, rerr := os.ReadDir("/proc/self/fd")
	if rerr != nil {
		return fmt.Errorf("close-on-exec: %w", errors.Join(err, rerr))
	}
	for _, e := range ents {
		fd, cerr := strconv.Atoi(e.Name())
		if cerr != nil || fd < first {
			continue
		}
		// Fails only for the directory's own descriptor, closed by now.
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
	}
	return nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}
