package sequencer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/appv/appv/internal/venv"
)

// CaptureOptions configure CaptureInstaller.
type CaptureOptions struct {
	// Installer is the command line to capture, run as root with
	// /bin/sh -c.
	Installer string
	// RunParent is where the capture's run directory (the environment's
	// socket) is made; "" means /run.
	RunParent string
	// Dir is the directory sequencing was started from: the installer's
	// working directory, visible inside at the same path, read-only. Empty
	// means the current directory.
	Dir string
	// Work is the capture's workspace, made when missing and otherwise
	// required to be empty. It holds the overlays' upper directories, so it
	// must be on a local filesystem overlayfs accepts as an upper layer
	// (ext4, XFS, btrfs, tmpfs). Capture.Close removes it. Empty means a new
	// directory under /var/tmp.
	Work string
	// Base, for an upgrade, is the Root/ directory of the extracted older
	// version (Root/VFS/<Folder>/ for its known folders, the rest for its
	// package root). The installer runs on top of it: its files are lower
	// layers beneath the native directories, its deletions and opaque
	// directories hide what they hid, and the changes are relative to it.
	Base string
	// BaseRoot is the native path Base's own files (those outside
	// Root/VFS/) appear at: the old package root, e.g. /opt/foo. Empty
	// means the Root recorded in the FilesystemMetadata.xml beside Base, as
	// appvpkg's Package.Extract leaves it; the same file gives the old
	// version's deletions and opaque directories.
	BaseRoot string
	// Env is added to the installer's environment and wins over the
	// defaults (HOME=/root, PATH, DEBIAN_FRONTEND=noninteractive, ...).
	Env []string
	// Timeout bounds the installer's run; 0 means no limit beyond ctx.
	Timeout time.Duration
	// Exe and ExeArgs run venv.SupervisorMain: the appv binary and its
	// hidden verb ("__venv-supervisor"). Empty Exe means this process's
	// executable.
	Exe     string
	ExeArgs []string
	// Stdout and Stderr receive the installer's output as it comes (the
	// progress display); nil discards it. The last lines are kept anyway
	// (Capture.Output, InstallerError.LastLines).
	Stdout, Stderr io.Writer
	// Logger receives the capture's records and its environment's; nil
	// discards them.
	Logger *slog.Logger
}

// InstallerError is an installer that exited with a code other than 0.
// Nothing was captured or written; the workspace is gone.
type InstallerError struct {
	ExitCode int
	// LastLines are the last lines of the installer's output (standard
	// output and error interleaved), oldest first.
	LastLines []string
}

func (e *InstallerError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sequencer: the installer failed with exit code %d; nothing was written", e.ExitCode)
	if len(e.LastLines) == 0 {
		b.WriteString(" (it printed nothing)")
		return b.String()
	}
	b.WriteString(". Its last lines of output:")
	for _, l := range e.LastLines {
		b.WriteString("\n  ")
		b.WriteString(l)
	}
	return b.String()
}

// OutputLines is how many of the installer's last lines CaptureInstaller keeps.
const OutputLines = 20

const (
	// captureHome is the installer's home: a fresh, empty directory inside
	// the environment, whose changes become the per-user folders ("~/...").
	captureHome = "/root"
	// installerPath is the installer's PATH.
	installerPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// stopTimeout bounds ending the environment after the installer.
	stopTimeout = 30 * time.Second
)

// packagedDirs are the native directories whose changes can become the
// package: each is an overlay over the host's own directory.
var packagedDirs = []string{"/usr", "/opt", "/etc", "/var", "/srv"}

// scratchDirs are overlaid too, so the installer's temporary files never
// reach the host; the layout excludes them.
var scratchDirs = []string{"/tmp", "/var/tmp"}

// hostOnly are the top-level directories the environment leaves as the
// host's: the kernel's and the devices' views (which venv refuses to
// cover), the runtime directory (sockets, the supervisors' run
// directories), and fsck's.
var hostOnly = []string{"/proc", "/sys", "/dev", "/run", "/lost+found"}

// captureLayer is one overlaid directory of a capture.
type captureLayer struct {
	// target is the directory inside the environment; prefix is how its
	// paths start in Changes: target, or "~" for the home.
	target, prefix string
	// name is the layer's directory name in the workspace.
	name string
	// native merges the host's target beneath (false only for the fresh
	// home).
	native bool
	// base is the lower directory composed from the old version (Base),
	// or "".
	base string
	// upper and work are the overlay's directories in the workspace.
	upper, work string
}

// nativePath returns the Change path of rel (slash-separated, relative to
// the layer).
func (l *captureLayer) nativePath(rel string) string {
	if rel == "." || rel == "" {
		return l.prefix
	}
	if l.prefix == "~" {
		return "~/" + rel
	}
	return l.target + "/" + rel
}

// CaptureInstaller runs opts.Installer in an isolated mount namespace and
// returns what it changed (it cannot be called Capture: that is the type). The installer runs as root, with /usr, /opt, /etc, /var,
// /srv, /tmp, /var/tmp and every other top-level directory of the host
// (but /proc, /sys, /dev and /run) overlaid: their upper directories, in
// the workspace, record every change, and the host's directories stay as
// they were. /root is a fresh, empty home (HOME=/root). The start directory
// is visible read-only at its own path. When the installer has exited, the
// environment is stopped (so nothing of it still runs) and the upper
// directories are read into Changes.
//
// A path whose content, type and mode equal what lies beneath (the old
// version's file, or else the host's) is not a change, however the
// installer wrote it: a file rewritten identically, a directory that is in
// the upper directory only because something in it changed. With a Base,
// the old version's deletions and opaque directories the installer left in
// place are listed too, so the new version keeps them.
//
// An installer that exits with another code than 0 gives an
// *InstallerError; then, as on every error, the workspace is removed.
func CaptureInstaller(ctx context.Context, opts CaptureOptions) (c *Capture, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if strings.TrimSpace(opts.Installer) == "" {
		return nil, errors.New("sequencer: capture: no installer command given")
	}
	dir, err := startDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	work, err := makeWorkspace(opts.Work)
	if err != nil {
		return nil, err
	}
	var cleanups []func()
	defer func() {
		for _, f := range slices.Backward(cleanups) {
			f()
		}
		if err != nil {
			if rerr := os.RemoveAll(work); rerr != nil {
				log.Warn("remove capture workspace", "dir", work, "err", rerr)
			}
		}
	}()

	layers, madeOnHost, err := planLayers(work, dir, log)
	for _, d := range madeOnHost {
		cleanups = append(cleanups, func() { removeHostStub(d, log) })
	}
	if err != nil {
		return nil, err
	}
	if opts.Base != "" {
		if err := composeBase(opts.Base, opts.BaseRoot, filepath.Join(work, "base"), layers, log); err != nil {
			return nil, err
		}
	}

	runDir, err := makeRunDir(opts.RunParent)
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() {
		// The venv manager removes an environment's directory once its
		// supervisor has gone, which may still be under way: retry until
		// the run directory is really gone.
		var err error
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			err = os.RemoveAll(runDir)
			if _, serr := os.Lstat(runDir); err == nil && errors.Is(serr, fs.ErrNotExist) {
				return
			}
			if time.Now().After(deadline) {
				break
			}
		}
		log.Warn("remove run directory", "dir", runDir, "err", err)
	})
	m, err := venv.NewManager(ctx, venv.Options{
		Exe:       opts.Exe,
		Args:      opts.ExeArgs,
		RunDir:    runDir,
		Logger:    log,
		IdleGrace: 100 * time.Millisecond,
		StopGrace: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("sequencer: capture: %w", err)
	}
	spec := venv.Spec{
		Key:    "capture-" + captureID(8),
		User:   venv.User{UID: 0, GID: 0, Groups: []uint32{0}, Name: "root", Home: captureHome},
		Layers: venvLayers(layers, dir),
	}
	code, output, err := runInstaller(ctx, m, spec, dir, opts, log)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, &InstallerError{ExitCode: code, LastLines: output}
	}

	changes, err := readChanges(ctx, layers)
	if err != nil {
		return nil, err
	}
	log.Info("installer captured", "changes", len(changes), "workspace", work)
	return &Capture{Changes: changes, ExitCode: code, Output: output, Dir: work}, nil
}

// Close removes the capture's workspace (and with it every Change's
// Source). It may be called more than once.
func (c *Capture) Close() error {
	if c == nil || c.Dir == "" {
		return nil
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		return fmt.Errorf("sequencer: remove capture workspace: %w", err)
	}
	return nil
}

// startDir resolves the directory the installer starts in.
func startDir(dir string) (string, error) {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("sequencer: capture: current directory: %w", err)
		}
		dir = wd
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("sequencer: capture: start directory: %w", err)
	}
	// The environment follows no symlink a user could have made: hand it
	// the real path.
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("sequencer: capture: start directory: %w", err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("sequencer: capture: start directory: %w", err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("sequencer: capture: start directory %s is not a directory", real)
	}
	return real, nil
}

// makeWorkspace makes the workspace, or checks that a given one is empty.
func makeWorkspace(work string) (string, error) {
	if work == "" {
		d, err := os.MkdirTemp("/var/tmp", "appv-capture-")
		if err != nil {
			return "", fmt.Errorf("sequencer: capture: workspace: %w", err)
		}
		return d, nil
	}
	abs, err := filepath.Abs(work)
	if err != nil {
		return "", fmt.Errorf("sequencer: capture: workspace: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", fmt.Errorf("sequencer: capture: workspace: %w", err)
	}
	ents, err := os.ReadDir(abs)
	if err != nil {
		return "", fmt.Errorf("sequencer: capture: workspace: %w", err)
	}
	if len(ents) > 0 {
		return "", fmt.Errorf("sequencer: capture: workspace %s is not empty", abs)
	}
	return abs, nil
}

// makeRunDir makes the venv Manager's run directory in parent (default
// /run): short (socket paths are limited), on no overlaid directory.
func makeRunDir(parent string) (string, error) {
	if parent == "" {
		parent = "/run"
	}
	if st, err := os.Stat(parent); err != nil || !st.IsDir() {
		parent = os.TempDir()
	}
	d, err := os.MkdirTemp(parent, "avc-")
	if err != nil {
		return "", fmt.Errorf("sequencer: capture: run directory: %w", err)
	}
	return d, nil
}

// planLayers lists the capture's overlays, with their upper and work
// directories in work. Standard directories the host lacks (/srv, say) are
// made on the host for the capture's time, empty, and listed in made: an
// installer writing there must not create them for real. A start directory
// inside the home keeps the host's home visible beneath the fresh one
// (else it could not be seen).
func planLayers(work, startDir string, log *slog.Logger) (layers []captureLayer, made []string, err error) {
	add := func(target, prefix, name string, native bool) {
		layers = append(layers, captureLayer{
			target: target, prefix: prefix, name: name, native: native,
			upper: filepath.Join(work, "upper", name),
			work:  filepath.Join(work, "work", name),
		})
	}
	// A standard directory that is a symlink (/var/tmp -> /tmp) is left
	// out: the overlay of where it leads records its changes.
	usable := func(d string) (bool, error) {
		state, err := ensureHostDir(d)
		if state == hostDirMade {
			made = append(made, d)
			log.Info("made a missing standard directory on the host for the capture's time", "dir", d)
		}
		if err != nil {
			return false, err
		}
		if state == hostDirSymlink {
			log.Info("not overlaid: a symlink", "dir", d)
			return false, nil
		}
		return true, nil
	}
	for _, d := range append(slices.Clone(packagedDirs), scratchDirs...) {
		ok, err := usable(d)
		if err != nil {
			return layers, made, err
		}
		if ok {
			add(d, d, strings.TrimPrefix(strings.ReplaceAll(d, "/", "-"), "-"), true)
		}
	}
	ok, err := usable(captureHome)
	if err != nil {
		return layers, made, err
	}
	if !ok {
		return layers, made, fmt.Errorf("sequencer: capture: %s is a symlink; the installer's fresh home must be a directory", captureHome)
	}
	homeNative := inTree(startDir, captureHome)
	if homeNative {
		log.Warn("the start directory is in root's home: the host's home stays visible beneath the installer's", "dir", startDir)
	}
	add(captureHome, "~", "home", homeNative)

	// Every other top-level directory is overlaid too, so that nothing
	// the installer writes reaches the host; what it writes there is not
	// packaged (no known folder holds it) and the layout says so.
	ents, err := os.ReadDir("/")
	if err != nil {
		return layers, made, fmt.Errorf("sequencer: capture: read /: %w", err)
	}
	for _, e := range ents {
		p := "/" + e.Name()
		if !e.IsDir() || slices.Contains(hostOnly, p) || slices.ContainsFunc(layers, func(l captureLayer) bool { return l.target == p }) {
			continue
		}
		add(p, p, "top/"+e.Name(), true)
	}

	for _, l := range layers {
		if l.target == startDir || inTree(l.target, startDir) {
			return layers, made, fmt.Errorf("sequencer: capture: cannot start the installer in %s: the capture overlays it; change to the installer's own directory first", startDir)
		}
	}
	for _, l := range layers {
		if err := makeUpper(l); err != nil {
			return layers, made, err
		}
	}
	return layers, made, nil
}

// makeUpper makes a layer's upper and work directories. The upper
// directory gets the mode of the host's directory: an overlay's root shows
// its upper directory's owner and mode, and programs the installer runs as
// other users (apt's _apt, a service's account) must still find /usr,
// /tmp, ... as they are on the host. (venv would make it 0700.)
func makeUpper(l captureLayer) error {
	mode := fs.FileMode(0o755)
	if st, err := os.Stat(l.target); err == nil && st.IsDir() {
		mode = permBits(st.Mode())
	}
	if err := os.MkdirAll(filepath.Dir(l.upper), 0o700); err != nil {
		return fmt.Errorf("sequencer: capture: %w", err)
	}
	if err := os.Mkdir(l.upper, 0o700); err != nil {
		return fmt.Errorf("sequencer: capture: %w", err)
	}
	if err := os.Chmod(l.upper, mode); err != nil {
		return fmt.Errorf("sequencer: capture: %w", err)
	}
	if err := os.MkdirAll(l.work, 0o700); err != nil {
		return fmt.Errorf("sequencer: capture: %w", err)
	}
	return nil
}

// States of a standard directory on the host.
const (
	hostDirThere = iota
	hostDirSymlink
	hostDirMade
)

// ensureHostDir makes the directory d on the host when it is missing.
func ensureHostDir(d string) (int, error) {
	st, err := os.Lstat(d)
	switch {
	case err == nil && st.IsDir():
		return hostDirThere, nil
	case err == nil && st.Mode()&fs.ModeSymlink != 0:
		return hostDirSymlink, nil
	case err == nil:
		return hostDirThere, fmt.Errorf("sequencer: capture: %s is not a directory", d)
	case !errors.Is(err, fs.ErrNotExist):
		return hostDirThere, fmt.Errorf("sequencer: capture: %w", err)
	}
	mode := fs.FileMode(0o755)
	switch d {
	case "/tmp", "/var/tmp":
		mode = 0o777 | fs.ModeSticky
	case captureHome:
		mode = 0o700
	}
	if err := os.Mkdir(d, mode); err != nil {
		return hostDirThere, fmt.Errorf("sequencer: capture: make missing %s: %w", d, err)
	}
	if err := os.Chmod(d, mode); err != nil {
		return hostDirMade, fmt.Errorf("sequencer: capture: make missing %s: %w", d, err)
	}
	return hostDirMade, nil
}

// removeHostStub removes a directory ensureHostDir made, if it is still
// empty.
func removeHostStub(d string, log *slog.Logger) {
	if err := os.Remove(d); err != nil {
		log.Warn("remove directory made for the capture", "dir", d, "err", err)
	}
}

// venvLayers turns the capture's layers into the environment's, with the
// start directory on top, read-only (a bind of itself). venv mounts
// parents first, so the start directory stays visible over an overlay of
// one of its ancestors.
func venvLayers(layers []captureLayer, startDir string) []venv.Layer {
	var out []venv.Layer
	for _, l := range layers {
		vl := venv.Layer{Target: l.target, Native: l.native, Upper: l.upper, Work: l.work}
		if l.base != "" {
			vl.Lower = []string{l.base}
		}
		out = append(out, vl)
	}
	return append(out, venv.Layer{Target: startDir, Lower: []string{startDir}})
}

// runInstaller runs the installer in its environment and waits for it and
// for the environment's end. It returns the exit code and the last lines of
// output.
func runInstaller(ctx context.Context, m *venv.Manager, spec venv.Spec, dir string, opts CaptureOptions, log *slog.Logger) (int, []string, error) {
	tail := newOutputTail(OutputLines)
	outW, outDone, err := tail.pipe(opts.Stdout)
	if err != nil {
		return 0, nil, fmt.Errorf("sequencer: capture: %w", err)
	}
	errW, errDone, err := tail.pipe(opts.Stderr)
	if err != nil {
		outW.Close()
		<-outDone
		return 0, nil, fmt.Errorf("sequencer: capture: %w", err)
	}
	env := append([]string{
		"HOME=" + captureHome, "USER=root", "LOGNAME=root", "PATH=" + installerPath,
		"DEBIAN_FRONTEND=noninteractive",
	}, opts.Env...)
	log.Info("running the installer", "command", opts.Installer, "dir", dir)
	p, err := m.Launch(ctx, spec, venv.Request{
		Argv:   []string{"/bin/sh", "-c", opts.Installer},
		Env:    env,
		Dir:    dir,
		Stdout: outW,
		Stderr: errW,
	})
	outW.Close()
	errW.Close()
	// stop ends the environment, whatever still runs in it, and waits for
	// the output to end.
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer cancel()
		if err := m.Stop(sctx, spec.Key); err != nil {
			log.Warn("stop the capture environment", "err", err)
		}
		for _, done := range []<-chan struct{}{outDone, errDone} {
			select {
			case <-done:
			case <-time.After(stopTimeout):
				log.Warn("the installer's output is still open after its environment ended")
			}
		}
	}
	if err != nil {
		stop()
		return 0, nil, fmt.Errorf("sequencer: capture: start the installer: %w", err)
	}

	type exit struct {
		code int
		err  error
	}
	exited := make(chan exit, 1)
	go func() {
		code, err := p.Wait()
		exited <- exit{code, err}
	}()
	var timeout <-chan time.Time
	if opts.Timeout > 0 {
		t := time.NewTimer(opts.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case x := <-exited:
		stop()
		if x.err != nil {
			return 0, nil, fmt.Errorf("sequencer: capture: %w", x.err)
		}
		log.Info("installer exited", "code", x.code)
		return x.code, tail.lines(), nil
	case <-timeout:
		stop()
		<-exited
		return 0, nil, fmt.Errorf("sequencer: capture: the installer did not finish within %s; it was stopped and nothing was written", opts.Timeout)
	case <-ctx.Done():
		stop()
		<-exited
		return 0, nil, fmt.Errorf("sequencer: capture: installer stopped: %w", ctx.Err())
	}
}

// outputTail keeps the last lines of the installer's output, from any
// number of streams, and passes the output on.
type outputTail struct {
	max int

	// wmu serializes the writes to the destinations, which may be one
	// writer for all streams and need not be safe for concurrent use.
	wmu  sync.Mutex
	mu   sync.Mutex // guards last
	last []string
}

func newOutputTail(n int) *outputTail { return &outputTail{max: n} }

// maxLineLen caps a kept line (an installer may print megabytes without a
// newline).
const maxLineLen = 1000

func (t *outputTail) add(line string) {
	line = strings.TrimRight(line, "\r")
	if len(line) > maxLineLen {
		line = line[:maxLineLen] + "…"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last = append(t.last, line)
	if len(t.last) > t.max {
		t.last = slices.Delete(t.last, 0, len(t.last)-t.max)
	}
}

func (t *outputTail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.last)
}

// pipe returns the write end of a pipe whose data goes to dst (if not nil)
// and into the tail, and a channel closed once the pipe's every writer has
// closed it and all was copied.
func (t *outputTail) pipe(dst io.Writer) (*os.File, <-chan struct{}, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer r.Close()
		lw := &lineWriter{dst: dst, tail: t}
		_, _ = io.Copy(lw, r)
		lw.flush()
	}()
	return w, done, nil
}

// lineWriter passes output on and splits it into lines for the tail.
type lineWriter struct {
	dst     io.Writer
	dstErr  bool // dst failed: stop writing to it, keep the tail
	tail    *outputTail
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if w.dst != nil && !w.dstErr {
		w.tail.wmu.Lock()
		_, err := w.dst.Write(p)
		w.tail.wmu.Unlock()
		if err != nil {
			w.dstErr = true
		}
	}
	rest := p
	for {
		i := slices.Index(rest, '\n')
		if i < 0 {
			break
		}
		w.partial = append(w.partial, rest[:i]...)
		w.tail.add(string(w.partial))
		w.partial = w.partial[:0]
		rest = rest[i+1:]
	}
	if room := maxLineLen + 1 - len(w.partial); room > 0 {
		w.partial = append(w.partial, rest[:min(len(rest), room)]...)
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	if len(w.partial) > 0 {
		w.tail.add(string(w.partial))
		w.partial = nil
	}
}

// inTree reports whether p is dir or lies below it (both clean).
func inTree(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// captureID returns n random bytes in hex.
func captureID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}
