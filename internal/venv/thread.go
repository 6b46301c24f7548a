package venv

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// onThread runs fn on an OS thread of its own that is thrown away
// afterwards, so that per-thread state fn changes (file-system credentials,
// no_new_privs) never reaches another goroutine. fn must not start
// goroutines that rely on that state.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the runtime ends the thread with this goroutine.
		errc <- fn()
	}()
	return <-errc
}

// asUser runs fn with the file-system identity of u (fsuid, fsgid and
// supplementary groups, on this thread only): files fn creates belong to u,
// and the kernel checks fn's path walks, opens and faccessat(AT_EACCESS)
// calls as it would for u. Root's file capabilities are dropped while the
// fsuid is not 0.
func asUser(u User, fn func() error) error {
	return onThread(func() error {
		groups := make([]int, len(u.Groups))
		for i, g := range u.Groups {
			groups[i] = int(g)
		}
		// x/sys/unix's Setgroups is the raw system call: this thread only.
		if err := unix.Setgroups(groups); err != nil {
			return fmt.Errorf("venv: setgroups for uid %d: %w", u.UID, err)
		}
		_, _ = unix.SetfsgidRetGid(int(u.GID))
		_, _ = unix.SetfsuidRetUid(int(u.UID))
		// setfsuid and setfsgid report the previous id, not errors; ask
		// again (an invalid id changes nothing and returns the current one).
		if got, _ := unix.SetfsuidRetUid(-1); got != int(u.UID) {
			return fmt.Errorf("venv: setfsuid %d: still %d", u.UID, got)
		}
		if got, _ := unix.SetfsgidRetGid(-1); got != int(u.GID) {
			return fmt.Errorf("venv: setfsgid %d: still %d", u.GID, got)
		}
		return fn()
	})
}

// withNoNewPrivs runs fn on a thread with no_new_privs set: processes it
// forks inherit the flag, so set-user-ID and file capabilities never raise
// their privileges.
func withNoNewPrivs(fn func() error) error {
	return onThread(func() error {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("venv: set no_new_privs: %w", err)
		}
		return fn()
	})
}
