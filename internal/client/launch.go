package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/catalog"
	"github.com/appv/appv/internal/dynconfig"
	"github.com/appv/appv/internal/fdpass"
	"github.com/appv/appv/internal/store"
	"github.com/appv/appv/internal/venv"
)

// venvKey names the virtual environment of a user and package.
func venvKey(c caller, pkgID string) string { return fmt.Sprintf("%d-%s", c.UID, pkgID) }

// launchTarget is a resolved application.
type launchTarget struct {
	v   *store.Version
	app AppInfo
}

// findApp resolves what the user typed to an application of a package
// published to them: an application id, its app-path command name, its
// display name or its file name.
func (s *Service) findApp(c caller, name string) (launchTarget, error) {
	entitled := map[catalog.Entry]bool{}
	for _, e := range s.machine.Global() {
		entitled[e] = true
	}
	if u, err := s.userCatalog(c); err == nil {
		for _, e := range u.Published() {
			entitled[e] = true
		}
		u.Close()
	}
	var found []launchTarget
	for _, v := range s.store.Versions() {
		if !entitled[entryOf(v)] {
			continue
		}
		m, err := v.Manifest()
		if err != nil {
			continue
		}
		for _, a := range appsOf(m) {
			base := path.Base(strings.ReplaceAll(a.ID, `\`, "/"))
			if name == a.ID || name == a.Command || strings.EqualFold(name, a.Name) || name == base {
				found = append(found, launchTarget{v, a})
			}
		}
	}
	switch len(found) {
	case 0:
		return launchTarget{}, errf(KindNotFound, "no application %q is published to you; appv list shows your packages and their applications", name)
	case 1:
		return found[0], nil
	}
	var names []string
	for _, f := range found {
		names = append(names, identityOf(f.v).Name+": "+f.app.ID)
	}
	sort.Strings(names)
	return launchTarget{}, errf(KindUsage, "%q matches several applications (%s); name one by its id", name, strings.Join(names, "; "))
}

// spec builds the virtual environment of a user and package: the package
// root at its native path, each VFS folder over its native directory, the
// user's XDG config directory, all with the user's COW areas as upper
// layers (docs/venv.md).
func (s *Service) spec(c caller, v *store.Version, m *appvpkg.Manifest) (venv.Spec, string) {
	pkgID, verID := v.ID()
	base := filepath.Join(s.cfg.MountDir, pkgID, verID, appvpkg.RootDir)
	roaming, local := cowDirs(c, pkgID)
	pkgRoot := "/opt/" + strings.ToLower(m.Identity().Name)
	if meta := v.FSMetadata(); meta != nil && meta.Root != "" {
		pkgRoot = meta.Root
	}
	cow := func(dir, token string) (string, string) {
		return filepath.Join(dir, token, "upper"), filepath.Join(dir, token, "work")
	}
	up, wk := cow(local, "appv_ROOT")
	layers := []venv.Layer{{Target: pkgRoot, Lower: []string{s.hideVFS, base}, Upper: up, Work: wk}}
	seen := map[string]bool{}
	for _, f := range v.Package().Files() {
		rest, ok := strings.CutPrefix(f.Name, appvpkg.RootDir+"/VFS/")
		if !ok {
			continue
		}
		tokName, _, _ := strings.Cut(rest, "/")
		if seen[tokName] {
			continue
		}
		seen[tokName] = true
		tok, ok := appvpkg.LookupToken(tokName)
		if !ok || tok.Windows {
			continue // App-V's Windows folders have no place on Linux
		}
		target := tok.NativePath(c.Home)
		dir := local
		if tok.PerUser && tok.Roaming {
			dir = roaming
		}
		// An upper layer may not lie inside the directory it covers.
		if strings.HasPrefix(dir+"/", target+"/") {
			dir = filepath.Join(c.Home, ".appv-cow", pkgID)
		}
		up, wk := cow(dir, tokName)
		lower := []string{filepath.Join(base, "VFS", tokName)}
		if hide, err := s.hideLayer(v, tokName); err != nil {
			s.vapp.Warn("cannot apply the package's deletions and opaque directories", "folder", tokName, "err", err)
		} else if hide != "" {
			// Between the package's files and the native directory: it
			// hides native content only.
			lower = append(lower, hide)
		}
		layers = append(layers, venv.Layer{Target: target, Lower: lower, Native: true, Upper: up, Work: wk})
	}
	// The user's settings directory is always virtualized, so an
	// application's settings stay in its COW area (as Flatpak keeps them
	// per application).
	if !seen["XdgConfigHome"] {
		up, wk := cow(roaming, "XdgConfigHome")
		layers = append(layers, venv.Layer{Target: filepath.Join(c.Home, ".config"), Native: true, Upper: up, Work: wk})
	}
	var env []string
	for _, ev := range s.environment(c, v, m) {
		val, _ := appvpkg.ExpandTokens(ev.Value, pkgRoot, c.Home)
		env = append(env, ev.Name+"="+val)
	}
	return venv.Spec{
		Key:    venvKey(c, pkgID),
		User:   venv.User{UID: uint32(c.UID), GID: uint32(c.GID), Groups: c.Groups, Name: c.Name, Home: c.Home},
		Layers: layers,
		Env:    env,
	}, pkgRoot
}

func (s *Service) handleLaunch(ctx context.Context, c caller, req Request, files []*os.File, r *reply) {
	// A switch that waited for the package's last process is made first,
	// so this launch runs the new version.
	s.settlePending(ctx, c)
	t, err := s.findApp(c, req.App)
	if err != nil {
		r.fail(err)
		return
	}
	if !req.TTY && len(files) != 3 {
		r.fail(errf(KindUsage, "launch needs the caller's standard input, output and error"))
		return
	}
	v := t.v
	if err := v.Acquire(); err != nil {
		r.fail(fmt.Errorf("launch %s: %w", t.app.Name, err))
		return
	}
	defer v.Release()
	// The first launch fetches the primary feature block.
	if err := v.EnsureFeatureBlock(ctx, store.Primary); err != nil {
		r.fail(fmt.Errorf("launch %s: fetch the primary feature block: %w", t.app.Name, err))
		return
	}
	m, err := v.Manifest()
	if err != nil {
		r.fail(err)
		return
	}
	spec, pkgRoot := s.spec(c, v, m)
	exe, unresolved := appvpkg.ExpandTokens(t.app.ID, pkgRoot, c.Home)
	if len(unresolved) > 0 {
		r.fail(errf(KindBadPackage, "application %s refers to folders with no Linux place (%s)", t.app.ID, strings.Join(unresolved, ", ")))
		return
	}
	vr := venv.Request{Argv: append([]string{exe}, req.Argv...), Env: req.Env, Dir: req.Dir, TTY: req.TTY, Rows: req.Rows, Cols: req.Cols}
	_, verID := v.ID()
	s.noteEnv(spec.Key, verID)
	if len(files) == 3 {
		vr.Stdin, vr.Stdout, vr.Stderr = files[0], files[1], files[2]
	}
	proc, err := s.venvs.Launch(ctx, spec, vr)
	if err != nil {
		r.fail(fmt.Errorf("launch %s: %w", t.app.Name, err))
		return
	}
	id := identityOf(v)
	s.vapp.Info("application launched", "app", t.app.ID, "package", id.Name, "version", id.Version, "pid", proc.PID(), "uid", c.UID)
	var started []*os.File
	if req.TTY && proc.Master() != nil {
		started = append(started, proc.Master())
	}
	if err := r.send(Response{Started: &Started{PID: proc.PID()}}, started...); err != nil {
		_ = proc.Signal(syscall.SIGHUP)
	}
	// Forward what the command sends (signals) until the program ends.
	go func() {
		for {
			var sig Signal
			fs, err := fdpass.Recv(r.conn, &sig)
			for _, f := range fs {
				f.Close()
			}
			if err != nil {
				return
			}
			if sig.Signal != 0 {
				_ = proc.Signal(syscall.Signal(sig.Signal))
			}
		}
	}()
	code, err := proc.Wait()
	if err != nil {
		r.fail(fmt.Errorf("launch %s: %w", t.app.Name, err))
		return
	}
	s.vapp.Info("application exited", "app", t.app.ID, "package", id.Name, "exit", code, "uid", c.UID)
	s.markUsed(v)
	_ = r.send(Response{Exit: &code})
}

// environment returns the environment variables the package sets for the
// caller: the manifest's, with its dynamic configuration over them
// (dynconfig.Merge: the deployment configuration, and the user
// configuration it was published to the caller with; for a package
// published globally the deployment configuration alone). A configuration
// that does not parse, or is for another package, is left out with a
// warning. Variables a configuration deletes are not set; the environment
// cannot remove variables of the caller's own.
func (s *Service) environment(c caller, v *store.Version, m *appvpkg.Manifest) []appvpkg.EnvironmentVariable {
	e := entryOf(v)
	var d *dynconfig.Deployment
	if data, err := s.machine.DeploymentConfig(e); err == nil {
		if dc, err := dynconfig.ParseDeployment(data); err != nil || !strings.EqualFold(dc.PackageID, e.PackageID) {
			s.vapp.Warn("the package's deployment configuration is not applied", "packageId", e.PackageID, "versionId", e.VersionID, "err", err)
		} else {
			d = dc
		}
	}
	var uc *dynconfig.User
	if !s.machine.IsGlobal(e) {
		if u, err := s.userCatalog(c); err == nil {
			if data, err := u.UserConfig(e); err == nil && strings.Contains(string(data), dynconfig.NSUser) {
				if parsed, err := dynconfig.ParseUser(data); err == nil && strings.EqualFold(parsed.PackageID, e.PackageID) {
					uc = parsed
				} else {
					s.vapp.Warn("the package's user configuration is not applied", "packageId", e.PackageID, "versionId", e.VersionID, "err", err, "uid", c.UID)
				}
			}
			u.Close()
		}
	}
	return dynconfig.Merge(m, d, uc).Environment.Include
}

// hideLayer returns an overlay layer that applies the version's deleted
// paths (whiteouts) and opaque directories under the VFS folder tok, made
// once per version under RunDir, or "" when there are none. App-V records
// deletions so the package can remove native files from its view; the
// layer sits below the package's files and above the native directory.
func (s *Service) hideLayer(v *store.Version, tok string) (string, error) {
	meta := v.FSMetadata()
	if meta == nil {
		return "", nil
	}
	prefix := appvpkg.RootDir + "/VFS/" + tok + "/"
	var deleted, opaque []string
	for _, d := range meta.Deleted {
		if rel, ok := strings.CutPrefix(d, prefix); ok {
			deleted = append(deleted, rel)
		}
	}
	for _, o := range meta.OpaqueDirs {
		if rel, ok := strings.CutPrefix(o.Path, prefix); ok {
			opaque = append(opaque, rel)
		}
	}
	if len(deleted) == 0 && len(opaque) == 0 {
		return "", nil
	}
	_, ver := v.ID()
	dir := filepath.Join(s.cfg.RunDir, "layers", ver, tok)
	// The marker is beside the layer, not in it: everything in the layer
	// appears in the environment.
	done := dir + ".complete"
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	// Names come from the package's metadata, which appvpkg checked: no
	// absolute paths, no "..". os.Root keeps every write inside the layer
	// all the same.
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return "", err
	}
	defer root.Close()
	for _, o := range opaque {
		if err := root.MkdirAll(o, 0o755); err != nil {
			return "", err
		}
		if err := unix.Setxattr(filepath.Join(tmp, o), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			return "", fmt.Errorf("opaque directory %s: %w", o, err)
		}
	}
	for _, d := range deleted {
		if err := root.MkdirAll(path.Dir(d), 0o755); err != nil {
			return "", err
		}
		if err := unix.Mknod(filepath.Join(tmp, d), unix.S_IFCHR, 0); err != nil && !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("whiteout %s: %w", d, err)
		}
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, os.WriteFile(done, nil, 0o644)
}
