package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/catalog"
	"github.com/appv/appv/internal/config"
	"github.com/appv/appv/internal/events"
	"github.com/appv/appv/internal/store"
)

func entryOf(v *store.Version) catalog.Entry {
	p, ver := v.ID()
	return catalog.Entry{PackageID: p, VersionID: ver}
}

func identityOf(v *store.Version) appvpkg.Identity {
	m, err := v.Manifest()
	if err != nil {
		return appvpkg.Identity{}
	}
	return m.Identity()
}

// findVersion resolves what the user typed (name, PackageId or VersionId) to
// a version in the store. When a package has several versions, the one
// published to the caller wins, else the highest version.
func (s *Service) findVersion(c caller, spec string) (*store.Version, error) {
	if spec == "" {
		return nil, errf(KindUsage, "name a package (its name, PackageId or VersionId); appv list shows them")
	}
	var matches []*store.Version
	for _, v := range s.store.Versions() {
		p, ver := v.ID()
		id := identityOf(v)
		if strings.EqualFold(spec, id.Name) || strings.EqualFold(spec, p) || strings.EqualFold(spec, ver) {
			matches = append(matches, v)
		}
	}
	if len(matches) == 0 {
		return nil, errf(KindNotFound, "no package %q on this machine; add it with appv add PATH|URL (appv list shows what is here)", spec)
	}
	if len(matches) > 1 {
		if u, err := s.userCatalog(c); err == nil {
			defer u.Close()
			for _, v := range matches {
				if u.IsPublished(entryOf(v)) || s.machine.IsGlobal(entryOf(v)) {
					return v, nil
				}
			}
		}
		sort.Slice(matches, func(i, j int) bool {
			return versionLess(identityOf(matches[j]).Version, identityOf(matches[i]).Version)
		})
	}
	return matches[0], nil
}

// versionLess compares dotted versions numerically.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		// A part that is not a number counts as 0.
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}

func (s *Service) userCatalog(c caller) (*catalog.User, error) {
	return catalog.OpenUser(c.Home, c.DataHome, c.UID, c.GID)
}

func (s *Service) handlePublish(ctx context.Context, c caller, req Request, r *reply) {
	publish := req.Verb == VerbPublish
	if req.Global && !c.root() {
		r.fail(errf(KindDenied, "publishing globally affects every user: run it as root"))
		return
	}
	if publish && !req.Global && !c.root() && s.cfg.RequirePublishAsAdmin {
		r.fail(errf(KindDenied, "RequirePublishAsAdmin is set on this machine: ask an administrator to publish the package to you"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.findVersion(c, req.Package)
	if err != nil {
		r.fail(err)
		return
	}
	e := entryOf(v)
	id := identityOf(v)
	manifest, err := v.Package().ReadAll(appvpkg.ManifestPart, appvpkg.MaxXMLPartSize)
	if err != nil {
		r.fail(err)
		return
	}
	m, err := appvpkg.ParseManifest(manifest)
	if err != nil {
		r.fail(err)
		return
	}
	target := "user " + c.Name
	switch {
	case publish && req.Global:
		target = "machine"
		err = s.machine.PublishGlobal(e, manifest, nil)
		if err == nil {
			err = s.integrate(ctx, c, v, m, true)
		}
	case publish:
		var u *catalog.User
		if u, err = s.userCatalog(c); err == nil {
			err = u.Publish(e, manifest, nil)
			u.Close()
		}
		if err == nil {
			err = s.integrate(ctx, c, v, m, false)
		}
	case req.Global:
		target = "machine"
		err = errors.Join(s.machine.UnpublishGlobal(e), s.deintegrate(ctx, c, v, m, true))
	default:
		var u *catalog.User
		if u, err = s.userCatalog(c); err == nil {
			err = u.Unpublish(e)
			u.Close()
		}
		err = errors.Join(err, s.deintegrate(ctx, c, v, m, false))
	}
	if err != nil {
		r.fail(fmt.Errorf("%s %s: %w", req.Verb, id.Name, err))
		return
	}
	s.ops.Info("package "+req.Verb+"ed", "package", id.Name, "version", id.Version, "packageId", id.PackageID, "versionId", id.VersionID, "target", target, "uid", c.UID)
	r.result(s.info(c, v))
}

func (s *Service) handleRemove(ctx context.Context, c caller, req Request, r *reply) {
	if !c.root() {
		r.fail(errf(KindDenied, "removing a package changes the machine: run appv remove as root"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.findVersion(c, req.Package)
	if err != nil {
		r.fail(err)
		return
	}
	p, _ := v.ID()
	if s.inUse(p) {
		r.fail(errf(KindConflict, "package %s is in use: close its applications or run appv stop %s first", req.Package, req.Package))
		return
	}
	if err := s.stopIdle(ctx, p); err != nil {
		r.fail(err)
		return
	}
	e := entryOf(v)
	if cancel := s.mounts[e.VersionID]; cancel != nil {
		cancel()
	}
	if err := s.store.Remove(ctx, e.PackageID, e.VersionID); err != nil {
		r.fail(err)
		return
	}
	if err := s.machine.Remove(e); err != nil {
		r.fail(err)
		return
	}
	id := identityOf(v)
	s.ops.Info("package removed", "package", id.Name, "packageId", e.PackageID, "versionId", e.VersionID, "uid", c.UID)
	r.result(map[string]string{"removed": e.VersionID})
}

// inUse reports whether any program runs in a virtual environment of the
// package. An environment whose programs have all exited lingers for a
// moment (its supervisor's idle grace); it does not count.
func (s *Service) inUse(pkgID string) bool {
	for _, env := range s.venvs.Running() {
		if strings.HasSuffix(env.Key, "-"+pkgID) && len(env.PIDs) > 0 {
			return true
		}
	}
	return false
}

// stopIdle ends the package's environments that no longer run anything, so
// they do not hold the version open.
func (s *Service) stopIdle(ctx context.Context, pkgID string) error {
	for _, env := range s.venvs.Running() {
		if strings.HasSuffix(env.Key, "-"+pkgID) && len(env.PIDs) == 0 {
			if err := s.venvs.Stop(ctx, env.Key); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Service) handleMount(ctx context.Context, c caller, req Request, r *reply) {
	s.mu.Lock()
	v, err := s.findVersion(c, req.Package)
	if err != nil {
		s.mu.Unlock()
		r.fail(err)
		return
	}
	e := entryOf(v)
	if !c.root() && !s.entitled(c, e) {
		s.mu.Unlock()
		r.fail(errf(KindDenied, "package %s is not published to you", req.Package))
		return
	}
	if req.Cancel {
		cancel := s.mounts[e.VersionID]
		s.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		r.result(map[string]bool{"canceled": cancel != nil})
		return
	}
	mctx, cancel := context.WithCancel(ctx)
	s.mounts[e.VersionID] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.mounts, e.VersionID)
		s.mu.Unlock()
		cancel()
	}()
	err = v.Mount(mctx, r.progress("loading"))
	if err != nil {
		if errors.Is(err, context.Canceled) {
			r.fail(errf(KindFailed, "mount of %s was canceled; run appv mount %s again to resume where it stopped", req.Package, req.Package))
			return
		}
		r.fail(err)
		return
	}
	s.ops.Info("package mounted", "package", identityOf(v).Name, "versionId", e.VersionID, "uid", c.UID)
	r.result(s.info(c, v))
}

// entitled reports whether the version is published to the caller or to the
// machine.
func (s *Service) entitled(c caller, e catalog.Entry) bool {
	if s.machine.IsGlobal(e) {
		return true
	}
	u, err := s.userCatalog(c)
	if err != nil {
		return false
	}
	defer u.Close()
	return u.IsPublished(e)
}

// cowDirs are the caller's copy-on-write areas for a package: roaming
// (App-V: %AppData%) and local (%LocalAppData%).
func cowDirs(c caller, pkgID string) (roaming, local string) {
	return filepath.Join(c.DataHome, "appv", "vfs", pkgID), filepath.Join(c.CacheHome, "appv", "vfs", pkgID)
}

func (s *Service) handleRepair(ctx context.Context, c caller, req Request, r *reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.findVersion(c, req.Package)
	if err != nil {
		r.fail(err)
		return
	}
	e := entryOf(v)
	if !s.entitled(c, e) {
		r.fail(errf(KindNotFound, "package %s is not published to you; nothing to repair", req.Package))
		return
	}
	both := !req.UserState && !req.Extensions
	if (both || req.UserState) && s.venvs.InUse(venvKey(c, e.PackageID)) {
		r.fail(errf(KindConflict, "package %s is running: close it (or appv stop %s) before repairing its state", req.Package, req.Package))
		return
	}
	var done []string
	if both || req.UserState {
		// An environment that lingers after its last program still has the
		// COW areas mounted as upper layers: end it first, or the next
		// launch would join it and write into deleted directories.
		if err := s.venvs.Stop(ctx, venvKey(c, e.PackageID)); err != nil {
			r.fail(err)
			return
		}
		roaming, local := cowDirs(c, e.PackageID)
		home, err := os.OpenRoot(c.Home)
		if err != nil {
			r.fail(err)
			return
		}
		for _, d := range []string{roaming, local} {
			rel, err := filepath.Rel(c.Home, d)
			if err == nil && !strings.HasPrefix(rel, "..") {
				err = home.RemoveAll(rel)
			}
			if err != nil {
				home.Close()
				r.fail(fmt.Errorf("repair: clear %s: %w", d, err))
				return
			}
		}
		home.Close()
		done = append(done, "user state cleared")
	}
	if both || req.Extensions {
		m, err := v.Manifest()
		if err == nil {
			err = errors.Join(s.deintegrate(ctx, c, v, m, false), s.integrate(ctx, c, v, m, false))
		}
		if err != nil {
			r.fail(fmt.Errorf("repair: extension points: %w", err))
			return
		}
		done = append(done, "extension points re-integrated")
	}
	s.ops.Info("package repaired", "package", identityOf(v).Name, "versionId", e.VersionID, "what", strings.Join(done, ", "), "uid", c.UID)
	r.result(map[string]any{"repaired": done})
}

func (s *Service) handleStop(ctx context.Context, c caller, req Request, r *reply) {
	v, err := s.findVersion(c, req.Package)
	if err != nil {
		r.fail(err)
		return
	}
	p, _ := v.ID()
	var stopped []string
	for _, env := range s.venvs.Running() {
		mine := env.Key == venvKey(c, p)
		if mine || (c.root() && strings.HasSuffix(env.Key, "-"+p)) {
			if err := s.venvs.Stop(ctx, env.Key); err != nil {
				r.fail(err)
				return
			}
			stopped = append(stopped, env.Key)
		}
	}
	s.vapp.Info("virtual environment stopped", "package", identityOf(v).Name, "environments", len(stopped), "uid", c.UID)
	r.result(map[string]any{"stopped": len(stopped)})
}

// callerView is what describing versions to one caller needs, read once
// per request: the versions published to the caller or the machine, and the
// packages with programs running. Listing 100 packages then reads the
// caller's catalog and /proc once, not once per package.
type callerView struct {
	global   map[catalog.Entry]bool
	entitled map[catalog.Entry]bool
	inUse    map[string]bool // PackageId

	servers map[string][]string // "PackageId/VersionId" -> the publishing servers listing it
	groups  map[string][]string // PackageId -> connection groups
	pending map[string]string   // PackageId -> what waits for its last process
}

func (s *Service) viewFor(c caller) callerView {
	cv := callerView{global: map[catalog.Entry]bool{}, entitled: map[catalog.Entry]bool{}, inUse: map[string]bool{}}
	cv.servers, cv.groups, cv.pending = s.publishingView(c)
	for _, e := range s.machine.Global() {
		cv.global[e], cv.entitled[e] = true, true
	}
	if u, err := s.userCatalog(c); err == nil {
		for _, e := range u.Published() {
			cv.entitled[e] = true
		}
		u.Close()
	}
	for _, env := range s.venvs.Running() {
		if _, pkg, ok := strings.Cut(env.Key, "-"); ok && len(env.PIDs) > 0 {
			cv.inUse[pkg] = true
		}
	}
	return cv
}

// info describes a version for the caller.
func (s *Service) info(c caller, v *store.Version) PackageInfo { return s.describe(s.viewFor(c), v) }

func (s *Service) describe(cv callerView, v *store.Version) PackageInfo {
	p, ver := v.ID()
	e := catalog.Entry{PackageID: p, VersionID: ver}
	st := v.Stats()
	pi := PackageInfo{
		PackageID: p, VersionID: ver, Location: v.Location(),
		Global: cv.global[e], Published: cv.entitled[e], InUse: cv.inUse[p],
		Blocks: st.BlocksTotal, Present: st.BlocksPresent,
		Size: v.Info().Size, BytesFetched: st.BytesFetched,
		Servers: cv.servers[p+"/"+ver], Groups: cv.groups[p], Pending: cv.pending[p],
	}
	if st.BlocksTotal > 0 {
		pi.PercentLoaded = 100 * float64(st.BlocksPresent) / float64(st.BlocksTotal)
	}
	if m, err := v.Manifest(); err == nil {
		id := m.Identity()
		pi.Name, pi.Version, pi.Apps = id.Name, id.Version, appsOf(m)
	}
	return pi
}

func (s *Service) handleList(_ context.Context, c caller, _ Request, r *reply) {
	out := []PackageInfo{}
	cv := s.viewFor(c)
	for _, v := range s.store.Versions() {
		out = append(out, s.describe(cv, v))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return versionLess(out[i].Version, out[j].Version)
	})
	r.result(out)
}

func (s *Service) handleConfig(_ context.Context, c caller, req Request, r *reply) {
	if req.Verb == VerbConfigGet {
		if req.Key == "" {
			all := map[string]string{}
			for _, k := range config.Keys() {
				all[k], _ = s.cfg.Get(k)
			}
			r.result(all)
			return
		}
		v, err := s.cfg.Get(req.Key)
		if err != nil {
			r.fail(errf(KindUsage, "%v", err))
			return
		}
		r.result(map[string]string{req.Key: v})
		return
	}
	if !c.root() {
		r.fail(errf(KindDenied, "changing the client configuration needs root"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.cfg
	if err := next.Set(req.Key, req.Value); err != nil {
		r.fail(errf(KindUsage, "%v", err))
		return
	}
	if err := next.Validate(); err != nil {
		r.fail(errf(KindUsage, "%v", err))
		return
	}
	if err := next.Save(); err != nil {
		r.fail(err)
		return
	}
	s.cfg = next
	root := next.PackageSourceRoot
	s.sourceRoot.Store(&root)
	s.admin.Info("configuration changed", "key", req.Key, "value", req.Value, "uid", c.UID)
	note := "applied"
	switch strings.ToLower(req.Key) {
	case "packageinstallationroot", "sharedcontentstoremode", "statedir", "rundir", "socket", "mountdir":
		note = "saved; takes effect when the client service restarts"
	case "packagesourceroot":
		note = "applied to packages opened from now on; packages already streaming keep their source until the service restarts"
	}
	r.result(map[string]string{"key": req.Key, "value": req.Value, "status": note})
}

func (s *Service) handleEvents(_ context.Context, c caller, req Request, r *reply) {
	f := events.Filter{Channel: req.Channel, Since: req.Since}
	recs, err := events.Read(filepath.Join(s.cfg.StateDir, "events.jsonl"), f)
	if err != nil {
		r.fail(err)
		return
	}
	if !c.root() {
		// Users see machine events and their own, not other users'.
		kept := recs[:0]
		for _, rec := range recs {
			if uid, ok := rec.Attrs["uid"].(float64); !ok || int(uid) == c.UID {
				kept = append(kept, rec)
			}
		}
		recs = kept
	}
	r.result(recs)
}
