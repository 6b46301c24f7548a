package venv

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/appv/appv/internal/fdpass"
)

// Process is a program started by Manager.Launch.
type Process struct {
	key    string
	pid    int
	master *os.File
	conn   *net.UnixConn // to the supervisor, until the program has exited

	wmu sync.Mutex // serializes Signal's writes on conn

	done chan struct{} // closed once code and err are set
	code int
	err  error
}

// PID is the program's process id (in the host's PID namespace: the
// environment has none of its own).
func (p *Process) PID() int { return p.pid }

// Master is the pseudo-terminal's master side when the launch asked for a
// TTY, else nil. The caller owns it: it copies between it and its own
// terminal, sets the window size on it (TIOCSWINSZ) and closes it. Reads
// fail with EIO once the program and everything it started have closed the
// terminal.
func (p *Process) Master() *os.File { return p.master }

// Wait waits for the program to exit and returns its exit code: the code
// it exited with, or 128 plus the number of the signal that killed it. The
// error is not nil only when the exit could not be learnt (the supervisor
// died). Wait may be called any number of times, from any goroutine.
func (p *Process) Wait() (exitCode int, err error) {
	<-p.done
	return p.code, p.err
}

// Signal sends sig to the program's process group (the program leads a
// session of its own). It returns os.ErrProcessDone once the program has
// exited.
func (p *Process) Signal(sig os.Signal) error {
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("venv: signal pid %d: unsupported signal %v", p.pid, sig)
	}
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if err := fdpass.Send(p.conn, request{Op: opSignal, Signal: int(s)}); err != nil {
		select {
		case <-p.done:
			return os.ErrProcessDone
		default:
		}
		return fmt.Errorf("venv: signal pid %d in %s: %w", p.pid, p.key, err)
	}
	return nil
}

// watch reads the supervisor's report of the program's exit.
func (p *Process) watch(log *slog.Logger) {
	defer close(p.done)
	defer p.conn.Close()
	for {
		var r reply
		files, err := fdpass.Recv(p.conn, &r)
		closeFiles(files)
		if err != nil {
			p.code = -1
			p.err = fmt.Errorf("venv: wait for pid %d in %s: lost the supervisor: %w", p.pid, p.key, err)
			log.Warn("lost a program's supervisor", "venv", p.key, "pid", p.pid, "err", err)
			return
		}
		if r.Exited {
			p.code = r.Code
			log.Info("program exited", "venv", p.key, "pid", p.pid, "code", r.Code)
			return
		}
	}
}
