package venv_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/appv/appv/internal/venv"
)

// The command wires a hidden verb to SupervisorMain; the root service makes
// one Manager and launches programs through it. Here user 1000 runs a
// package whose root appears at /opt/hello, with the package's
// VFS/XdgConfigHome merged over ~/.config, and the user's changes in COW
// local and COW roaming.
func ExampleManager_Launch() {
	// In main, before anything else:
	//
	//	if len(os.Args) > 1 && os.Args[1] == "__venv-supervisor" {
	//		os.Exit(venv.SupervisorMain(os.Args[2:]))
	//	}
	ctx := context.Background()
	m, err := venv.NewManager(ctx, venv.Options{
		Args:   []string{"__venv-supervisor"},
		RunDir: "/run/appv/venv",
		Logger: slog.Default(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	const pkg = "7a3d0f4e-1c2b-4d5e-8f90-123456789abc"
	store := "/var/lib/appv/mnt/" + pkg // the package's files, streamed
	home := "/home/ann"
	roaming := filepath.Join(home, ".local/share/appv/vfs", pkg) // $XDG_DATA_HOME
	local := filepath.Join(home, ".cache/appv/vfs", pkg)         // $XDG_CACHE_HOME
	spec := venv.Spec{
		Key:  "1000-" + pkg,
		User: venv.User{UID: 1000, GID: 1000, Groups: []uint32{27, 100}, Name: "ann", Home: home},
		Layers: []venv.Layer{
			{
				Target: "/opt/hello",
				Lower:  []string{store + "/Root"},
				Upper:  local + "/Root", Work: local + "/.work/Root",
			},
			{
				Target: home + "/.config",
				Lower:  []string{store + "/Root/VFS/XdgConfigHome"},
				Native: true,
				Upper:  roaming + "/XdgConfigHome", Work: roaming + "/.work/XdgConfigHome",
			},
		},
		Env: []string{"HELLO_HOME=/opt/hello"},
	}
	p, err := m.Launch(ctx, spec, venv.Request{
		Argv:   []string{"/opt/hello/bin/hello", "--greet"},
		Env:    []string{"HOME=" + home, "LANG=C.UTF-8"},
		Dir:    home,
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	code, err := p.Wait()
	fmt.Println(code, err)
}
