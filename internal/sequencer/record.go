package sequencer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/venv"
)

// RecordOptions describe what Record runs and where.
type RecordOptions struct {
	// Staged is the package: Staged.Dir holds its tree (the package root's
	// files at the top, VFS/<Folder>/... for known folders), which appears
	// at Staged.PackageRoot. Record adds a message to Staged.Report, when
	// it is not nil, for each command that failed or was stopped.
	Staged *Staged
	// Commands are run one after another, each with /bin/sh -c, as User,
	// in the package's virtual environment.
	Commands []string
	// Timeout bounds each command: at the timeout its environment is
	// stopped and what it read until then counts. 0 means no limit.
	Timeout time.Duration
	// User runs the commands. The per-user folders of the package appear
	// under User.Home, which is also the commands' working directory.
	User venv.User
	// CommandEnv is the commands' environment ("NAME=value"); nil means
	// this process's display, session bus, locale and terminal variables
	// (recordPassEnv), so that graphical applications can start.
	CommandEnv []string
	// PackageEnv are the package's environment variables ("NAME=value",
	// tokens expanded), as the client sets them (venv.Spec.Env).
	PackageEnv []string
	// Exe, ExeArgs and Env start a supervisor (venv.Options Exe, Args and
	// Env): the appv binary and its hidden verb.
	Exe     string
	ExeArgs []string
	Env     []string
	// RunDir is the run directory of Record's venv.Manager, for Record's
	// use alone, with a short path (it holds sockets); empty means a new
	// temporary directory.
	RunDir string
	// Stdout and Stderr receive the commands' output; nil discards it.
	Stdout, Stderr io.Writer
	// Logger receives Record's records and its environments'; nil
	// discards them.
	Logger *slog.Logger
}

// recordPassEnv are the variables a command gets from this process when
// RecordOptions.CommandEnv is nil.
var recordPassEnv = []string{
	"DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS",
	"LANG", "LANGUAGE", "LC_ALL", "TERM",
}

// recordStopGrace is how long a stopped environment's programs have
// between SIGTERM and SIGKILL.
const recordStopGrace = 2 * time.Second

// Record runs each command in a virtual environment over the staged files,
// laid out as the client lays out a package, and returns the blocks they
// read as a primary feature block: files as package paths (Root/...), in
// the order they were first read, each with the 64 KiB blocks of it that
// were read, as explicit ranges (never "the whole file", which a stream map
// says with no ranges).
//
// The environment's lowers are a recording FUSE file system over
// Staged.Dir (see recordfs.go): the package root with the VFS directory
// hidden, each VFS/<Folder> over its native directory, ~/.config always
// virtualized. Everything the commands write lands in copy-on-write
// directories that are thrown away, as is the mount. Record needs root.
//
// A command that exits with a non-zero code, or is still running at the
// timeout, is not an error: what it read is recorded, and the event is
// logged and added to Staged.Report ("Launch": a Warning for a failure, an
// Info for a timeout). The environment is stopped after each command, so
// background processes a command left do not outlive it; the next command
// starts a new one, over the same copy-on-write directories.
//
// Record returns an error when it cannot set up the file system or the
// environment, when a command cannot be started, or when ctx ends; the
// feature block then holds what was read until then. In every case the
// environments are stopped, the file system unmounted and the temporary
// directories removed before Record returns.
func Record(ctx context.Context, opts RecordOptions) (fb appvpkg.FeatureBlock, err error) {
	if err := opts.check(); err != nil {
		return fb, err
	}
	if len(opts.Commands) == 0 {
		return fb, nil
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &recording{opts: opts, log: log}
	defer func() { err = errors.Join(err, r.cleanup()) }()
	if err := r.setUp(ctx); err != nil {
		return fb, err
	}
	var runErr error
	for i, c := range opts.Commands {
		log.Info("recording a launch", "command", c, "n", i+1, "of", len(opts.Commands))
		if runErr = r.run(ctx, c); runErr != nil {
			break
		}
	}
	// Once every program has exited, no read is still to come.
	stopErr := r.stopAll()
	unmountErr := r.unmount()
	fb = r.fs.rec.featureBlock(log)
	log.Info("launches recorded", "files", len(fb.Files), "blocks", recordBlocks(fb))
	return fb, errors.Join(runErr, stopErr, unmountErr)
}

func (o *RecordOptions) check() error {
	switch {
	case o.Staged == nil || o.Staged.Dir == "":
		return errors.New("sequencer: record: no staged tree")
	case !filepath.IsAbs(o.Staged.PackageRoot) || filepath.Clean(o.Staged.PackageRoot) != o.Staged.PackageRoot || o.Staged.PackageRoot == "/":
		return fmt.Errorf("sequencer: record: package root %q is not a clean absolute path other than /", o.Staged.PackageRoot)
	case !filepath.IsAbs(o.User.Home):
		return fmt.Errorf("sequencer: record: user home %q is not an absolute path", o.User.Home)
	case o.Timeout < 0:
		return fmt.Errorf("sequencer: record: negative timeout %s", o.Timeout)
	}
	if len(o.Commands) > 0 && os.Geteuid() != 0 {
		return errors.New("sequencer: record: recording launches needs root (FUSE, mount namespaces)")
	}
	return nil
}

// recording is the state of one Record call.
type recording struct {
	opts RecordOptions
	log  *slog.Logger

	scratch string // mount point, whiteout layer, copy-on-write directories
	runDir  string // made by Record, removed by cleanup; "" when the caller's
	fs      *recordFS
	m       *venv.Manager
	spec    venv.Spec
	env     []string
	out     sync.Mutex // serializes writes to opts.Stdout and opts.Stderr
}

// setUp makes the scratch directory, mounts the recording file system and
// makes the Manager and the environment's Spec. cleanup undoes what it did,
// also when it fails half way.
func (r *recording) setUp(ctx context.Context) error {
	o := r.opts
	tree, err := filepath.Abs(o.Staged.Dir)
	if err != nil {
		return fmt.Errorf("sequencer: record: %w", err)
	}
	if r.scratch, err = os.MkdirTemp("", "appv-record-"); err != nil {
		return fmt.Errorf("sequencer: record: scratch directory: %w", err)
	}
	mnt := filepath.Join(r.scratch, "mnt")
	hide := filepath.Join(r.scratch, "hide-vfs")
	cow := filepath.Join(r.scratch, "cow")
	if err := recordScratch(r.scratch, mnt, hide, cow, o.User); err != nil {
		return err
	}
	if r.fs, err = mountRecordFS(tree, mnt, r.log); err != nil {
		return err
	}
	key, err := recordKey()
	if err != nil {
		return err
	}
	if r.spec, err = recordSpec(o, key, tree, mnt, hide, cow, r.log); err != nil {
		return err
	}
	for _, l := range r.spec.Layers {
		if recordWithin(r.scratch, l.Target) {
			return fmt.Errorf("sequencer: record: the folder %s would cover the scratch directory %s; set TMPDIR elsewhere", l.Target, r.scratch)
		}
	}
	runDir := o.RunDir
	if runDir == "" {
		if runDir, err = os.MkdirTemp("", "avrec"); err != nil {
			return fmt.Errorf("sequencer: record: run directory: %w", err)
		}
		r.runDir = runDir
	}
	r.m, err = venv.NewManager(ctx, venv.Options{
		Exe: o.Exe, Args: o.ExeArgs, Env: o.Env, RunDir: runDir, Logger: r.log,
		IdleGrace: 200 * time.Millisecond, StopGrace: recordStopGrace,
	})
	if err != nil {
		return fmt.Errorf("sequencer: record: %w", err)
	}
	r.env = o.CommandEnv
	if r.env == nil {
		for _, k := range recordPassEnv {
			if v, ok := os.LookupEnv(k); ok {
				r.env = append(r.env, k+"="+v)
			}
		}
	}
	// A --launch command names the application as a user would: the
	// package root's bin directories come first on PATH, as its app paths
	// are on a user's PATH once published.
	hasPath := false
	for _, kv := range r.env {
		if strings.HasPrefix(kv, "PATH=") {
			hasPath = true
		}
	}
	if !hasPath {
		root := o.Staged.PackageRoot
		r.env = append(r.env, "PATH="+root+"/bin:"+root+"/sbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	return nil
}

// recordScratch lays out the scratch directory: the mount point, the layer
// that hides the package root's VFS directory (a whiteout, as the client's)
// and the parent of the copy-on-write directories, which the supervisor
// makes as the user.
func recordScratch(scratch, mnt, hide, cow string, u venv.User) error {
	wrap := func(err error) error { return fmt.Errorf("sequencer: record: scratch directory: %w", err) }
	if err := os.Chmod(scratch, 0o755); err != nil {
		return wrap(err)
	}
	for _, d := range []string{mnt, hide, cow} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return wrap(err)
		}
	}
	if err := unix.Mknod(filepath.Join(hide, "VFS"), unix.S_IFCHR, 0); err != nil {
		return wrap(fmt.Errorf("whiteout: %w", err))
	}
	if err := os.Chown(cow, int(u.UID), int(u.GID)); err != nil {
		return wrap(err)
	}
	if err := os.Chmod(cow, 0o700); err != nil {
		return wrap(err)
	}
	return nil
}

// recordKey names a recording's environment.
func recordKey() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("sequencer: record: %w", err)
	}
	return "record-" + hex.EncodeToString(b), nil
}

// recordSpec lays the package out as the client does (client.Service.spec):
// the package root over mnt with its VFS directory hidden, each
// VFS/<Folder> over its native directory (per-user ones under the user's
// home), ~/.config always virtualized; every layer with a copy-on-write
// directory under cow. Folders with no Linux place are skipped and logged.
func recordSpec(o RecordOptions, key, tree, mnt, hide, cow string, log *slog.Logger) (venv.Spec, error) {
	layer := func(target, name string, native bool, lower ...string) venv.Layer {
		return venv.Layer{
			Target: target, Lower: lower, Native: native,
			Upper: filepath.Join(cow, name, "upper"), Work: filepath.Join(cow, name, "work"),
		}
	}
	layers := []venv.Layer{layer(o.Staged.PackageRoot, "appv_ROOT", false, hide, mnt)}
	ents, err := os.ReadDir(filepath.Join(tree, "VFS"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return venv.Spec{}, fmt.Errorf("sequencer: record: %w", err)
	}
	at := map[string]int{} // layer index by target
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		tok, ok := appvpkg.LookupToken(e.Name())
		if !ok || tok.Windows {
			log.Warn("VFS folder with no Linux place; not virtualized while recording", "folder", e.Name())
			continue
		}
		target := tok.NativePath(o.User.Home)
		lower := filepath.Join(mnt, "VFS", e.Name())
		if i, ok := at[target]; ok { // the same token spelt twice
			layers[i].Lower = append(layers[i].Lower, lower)
			continue
		}
		at[target] = len(layers)
		layers = append(layers, layer(target, tok.Name, true, lower))
	}
	// The user's settings are always virtualized, as the client does.
	if cfg := filepath.Join(o.User.Home, ".config"); !recordHas(at, cfg) {
		layers = append(layers, layer(cfg, "XdgConfigHome", true))
	}
	return venv.Spec{Key: key, User: o.User, Layers: layers, Env: o.PackageEnv}, nil
}

func recordHas(m map[string]int, k string) bool {
	_, ok := m[k]
	return ok
}

// recordWithin reports whether p is dir or lies inside it.
func recordWithin(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// run runs one command until it exits, the timeout or the end of ctx, then
// stops its environment.
func (r *recording) run(ctx context.Context, command string) error {
	stdout, closeOut, waitOut, err := r.output(r.opts.Stdout)
	if err != nil {
		return err
	}
	defer waitOut()
	stderr, closeErr, waitErr, err := r.output(r.opts.Stderr)
	if err != nil {
		closeOut()
		return err
	}
	defer waitErr()
	p, err := r.m.Launch(ctx, r.spec, venv.Request{
		Argv: []string{"/bin/sh", "-c", command}, Env: r.env, Stdout: stdout, Stderr: stderr,
	})
	closeOut()
	closeErr()
	if err != nil {
		return errors.Join(fmt.Errorf("sequencer: record: launch %q: %w", command, err), r.stop(ctx))
	}
	start := time.Now()
	exited := make(chan struct{})
	var code int
	var exitErr error
	go func() {
		code, exitErr = p.Wait()
		close(exited)
	}()
	var timeout <-chan time.Time
	if r.opts.Timeout > 0 {
		t := time.NewTimer(r.opts.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var timedOut bool
	select {
	case <-exited:
	case <-timeout:
		timedOut = true
	case <-ctx.Done():
	}
	stopErr := r.stop(ctx)
	// The supervisor is gone (or killed): the program has exited, or Wait
	// has lost it.
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		return errors.Join(fmt.Errorf("sequencer: record: %q: its exit was never reported", command), stopErr)
	}
	switch {
	case ctx.Err() != nil && !timedOut:
		return errors.Join(fmt.Errorf("sequencer: record: %q: %w", command, ctx.Err()), stopErr)
	case stopErr != nil:
		return stopErr
	case timedOut:
		r.log.Info("launch still running at the timeout; stopped", "command", command, "timeout", r.opts.Timeout)
		r.report(Info, fmt.Sprintf("%q still ran after %s and was stopped; what it read until then is in the primary feature block", command, r.opts.Timeout))
	case exitErr != nil:
		return fmt.Errorf("sequencer: record: %q: %w", command, exitErr)
	case code != 0:
		r.log.Warn("launch exited with an error", "command", command, "exit", code)
		r.report(Warning, fmt.Sprintf("%q exited with code %d; what it read is in the primary feature block", command, code))
	default:
		r.log.Info("launch exited", "command", command, "duration", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func (r *recording) report(sev Severity, text string) {
	if r.opts.Staged.Report != nil {
		r.opts.Staged.Report.Add(sev, "Launch", "", text)
	}
}

// stop stops the environment, if it runs, and waits for its supervisor to
// exit (and with it the namespace holding the overlays over the mount). It
// still does so when ctx has ended.
func (r *recording) stop(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordStopGrace+30*time.Second)
	defer cancel()
	if err := r.m.Stop(sctx, r.spec.Key); err != nil {
		return fmt.Errorf("sequencer: record: %w", err)
	}
	return nil
}

// stopAll stops every environment of the Manager (there is at most one).
func (r *recording) stopAll() error {
	if r.m == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), recordStopGrace+30*time.Second)
	defer cancel()
	var errs []error
	for _, e := range r.m.Running() {
		if err := r.m.Stop(ctx, e.Key); err != nil {
			errs = append(errs, fmt.Errorf("sequencer: record: %w", err))
		}
	}
	return errors.Join(errs...)
}

// output returns the descriptor to give a program for w: nil for nil
// (/dev/null), w itself for a file, else a pipe copied to w. closeW closes
// Record's copy of the pipe's write end once the program has its own;
// wait waits until everything written has been copied (all write ends
// closed: the environment has been stopped), for a few seconds at most.
func (r *recording) output(w io.Writer) (f *os.File, closeW, wait func(), err error) {
	nop := func() {}
	switch w := w.(type) {
	case nil:
		return nil, nop, nop, nil
	case *os.File:
		return w, nop, nop, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sequencer: record: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := pr.Read(buf)
			if n > 0 {
				r.out.Lock()
				_, _ = w.Write(buf[:n])
				r.out.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	var once sync.Once
	closeW = func() { once.Do(func() { pw.Close() }) }
	wait = func() {
		closeW()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			r.log.Warn("a launch's output is still open; no longer copied")
		}
		pr.Close()
	}
	return pw, closeW, wait, nil
}

// unmount unmounts the recording file system, once.
func (r *recording) unmount() error {
	if r.fs == nil {
		return nil
	}
	err := r.fs.unmount()
	if err == nil {
		r.fs.dir = ""
	}
	return err
}

// cleanup stops what runs and removes what setUp made. The scratch
// directory's mount point is kept if it could not be unmounted.
func (r *recording) cleanup() error {
	var errs []error
	if err := r.stopAll(); err != nil {
		errs = append(errs, err)
	}
	mounted := false
	if r.fs != nil && r.fs.dir != "" {
		if err := r.unmount(); err != nil {
			errs = append(errs, err)
			mounted = true
		}
	}
	if r.scratch != "" {
		if mounted {
			// Never walk into the staged tree: remove around the mount.
			for _, d := range []string{"hide-vfs", "cow"} {
				if err := os.RemoveAll(filepath.Join(r.scratch, d)); err != nil {
					errs = append(errs, fmt.Errorf("sequencer: record: %w", err))
				}
			}
		} else if err := os.RemoveAll(r.scratch); err != nil {
			errs = append(errs, fmt.Errorf("sequencer: record: %w", err))
		}
	}
	if r.runDir != "" {
		if err := os.RemoveAll(r.runDir); err != nil {
			errs = append(errs, fmt.Errorf("sequencer: record: %w", err))
		}
	}
	return errors.Join(errs...)
}

// recordBlocks counts the blocks of a feature block's ranges.
func recordBlocks(fb appvpkg.FeatureBlock) int {
	n := 0
	for _, f := range fb.Files {
		for _, r := range f.Ranges {
			n += r.Count
		}
	}
	return n
}
