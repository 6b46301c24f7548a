package venv

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openPTY allocates a pseudo-terminal whose slave belongs to u (mode 0600),
// with the given size when not zero. Both sides are close-on-exec. The slave
// is opened from the master (TIOCGPTPEER), never by path, so nothing a user
// can change in the file system redirects it.
func openPTY(u User, rows, cols uint16) (master, slave *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("venv: open /dev/ptmx: %w", err)
	}
	master = os.NewFile(uintptr(mfd), "/dev/ptmx")
	fail := func(op string, err error) (*os.File, *os.File, error) {
		master.Close()
		return nil, nil, fmt.Errorf("venv: pty: %s: %w", op, err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return fail("unlock", err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		return fail("open slave", errno)
	}
	slave = os.NewFile(sfd, "pts")
	if err := unix.Fchown(int(sfd), int(u.UID), int(u.GID)); err != nil {
		slave.Close()
		return fail("chown slave", err)
	}
	if err := unix.Fchmod(int(sfd), 0o600); err != nil {
		slave.Close()
		return fail("chmod slave", err)
	}
	if rows != 0 || cols != 0 {
		if err := unix.IoctlSetWinsize(mfd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
			slave.Close()
			return fail("set size", err)
		}
	}
	return master, slave, nil
}
