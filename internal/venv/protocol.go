package venv

import (
	"errors"
	"io/fs"
	"time"
)

// The supervisor and the Manager talk with fdpass messages.
//
// Setup, on the socketpair the supervisor inherits as descriptor 3: the
// Manager sends a setupConfig, the supervisor answers one setupReply once
// its mounts are in place and its socket listens (or with the error that
// stopped it), and both close the pair.
//
// Then one connection to the supervisor's socket per operation:
//   - launch: request{Op: opLaunch} with stdin, stdout and stderr attached
//     (none for a TTY); reply with PID (and the pty master attached) or an
//     Error; later request{Op: opSignal} messages from the Manager while the
//     program runs; finally reply{Exited: true, Code} when it has exited.
//   - stop: request{Op: opStop}; reply once every process has gone.
//   - status: request{Op: opStatus}; reply with Key, UID and PID.

const (
	opLaunch = "launch"
	opSignal = "signal"
	opStop   = "stop"
	opStatus = "status"
)

// setupConfig is what a new supervisor needs to know.
type setupConfig struct {
	Spec Spec `json:"spec"`
	// Dir is the environment's directory under Options.RunDir: the socket
	// and the stub directories live there.
	Dir       string        `json:"dir"`
	IdleGrace time.Duration `json:"idleGrace"`
	// HostNS is the Manager's mount namespace (readlink of
	// /proc/self/ns/mnt): the supervisor refuses to mount anything in it.
	HostNS string `json:"hostNS"`
}

type setupReply struct {
	Error string `json:"error,omitempty"`
	PID   int    `json:"pid,omitempty"`
}

type request struct {
	Op string `json:"op"`
	// UID is the user the caller expects the environment to belong to.
	UID  uint32   `json:"uid"`
	Argv []string `json:"argv,omitempty"`
	Env  []string `json:"env,omitempty"`
	Dir  string   `json:"dir,omitempty"`
	TTY  bool     `json:"tty,omitempty"`
	Rows uint16   `json:"rows,omitempty"`
	Cols uint16   `json:"cols,omitempty"`
	// Signal is the signal number for opSignal.
	Signal int `json:"signal,omitempty"`
	// Grace is how long opStop waits after SIGTERM before SIGKILL.
	Grace time.Duration `json:"grace,omitempty"`
}

type reply struct {
	Error string `json:"error,omitempty"`
	// Kind sorts an Error (one of the kind… constants).
	Kind   string `json:"kind,omitempty"`
	PID    int    `json:"pid,omitempty"`
	Exited bool   `json:"exited,omitempty"`
	// Code is the exit code: the program's, or 128+signal.
	Code int    `json:"code,omitempty"`
	Key  string `json:"key,omitempty"`
	UID  uint32 `json:"uid,omitempty"`
}

// Kinds of errors a supervisor reports.
const (
	kindClosing    = "closing"    // the supervisor is exiting: start a new one
	kindStopping   = "stopping"   // the environment is being stopped
	kindUser       = "user"       // the environment belongs to another user
	kindNotFound   = "notfound"   // the program does not exist
	kindPermission = "permission" // the user may not run the program
	kindInvalid    = "invalid"    // a malformed request
)

// ErrStopping is returned by Launch while the environment is being stopped.
var ErrStopping = errors.New("venv: environment is stopping")

// ErrWrongUser is returned by Launch when an environment with the spec's Key
// runs for another user.
var ErrWrongUser = errors.New("venv: environment belongs to another user")

// errClosing reports that the supervisor went away before taking the
// request; the Manager starts a new one.
var errClosing = errors.New("venv: supervisor is exiting")

// remoteError is an error reported by a supervisor. It matches fs.ErrNotExist,
// fs.ErrPermission, ErrStopping or ErrWrongUser with errors.Is by its kind.
type remoteError struct {
	msg, kind string
}

func (e *remoteError) Error() string { return e.msg }

func (e *remoteError) Is(target error) bool {
	switch e.kind {
	case kindNotFound:
		return target == fs.ErrNotExist
	case kindPermission:
		return target == fs.ErrPermission
	case kindStopping:
		return target == ErrStopping
	case kindUser:
		return target == ErrWrongUser
	case kindClosing:
		return target == errClosing
	}
	return false
}
