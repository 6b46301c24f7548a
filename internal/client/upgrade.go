package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/catalog"
	"github.com/appv/appv/internal/publishing"
	"github.com/appv/appv/internal/store"
)

// Upgrades, as App-V makes them: a new version is added beside the old
// one, sharing every unchanged file (hard links) and block; then the
// publication switches to it, at once when the package is not in use, else
// as a pending task done when its last process exits (for a package
// published to the machine, when no user runs it). Until then running
// processes and new launches use the old version. Old versions a refresh or
// a standalone add put in the store are removed once nothing refers to
// them (collect).

// machineTarget is the service's refreshTarget. Its methods run with
// Service.mu held.
type machineTarget struct{ s *Service }

var _ refreshTarget = machineTarget{}

func (t machineTarget) ensure(ctx context.Context, reg *Registration, p publishing.Package, from string, deployment []byte) (ensured, error) {
	s := t.s
	v, added, err := s.addVersion(ctx, p.URL, p.PackageID, p.VersionID, from, reg.key())
	if err != nil {
		return ensured{}, err
	}
	id := identityOf(v)
	e := entryOf(v)
	if added || deployment != nil || !s.machine.Has(e) {
		manifest, err := v.Package().ReadAll(appvpkg.ManifestPart, appvpkg.MaxXMLPartSize)
		if err == nil {
			err = s.machine.Add(e, manifest, deployment)
		}
		if err != nil {
			return ensured{id.Name, id.Version, added}, fmt.Errorf("record %s in the machine catalog: %w", id.Name, err)
		}
	}
	return ensured{id.Name, id.Version, added}, nil
}

func (t machineTarget) switchTo(ctx context.Context, reg *Registration, pkgID, from, to string, userConfig []byte) (bool, error) {
	if to != "" && !reg.machine() && t.s.cfg.RequirePublishAsAdmin {
		return false, errf(KindDenied, "RequirePublishAsAdmin is set on this machine: only the machine's publishing servers (registered by root) publish; ask an administrator")
	}
	return t.s.switchOrDefer(ctx, pendingTask{
		Global: reg.machine(), Owner: reg.Owner, PackageID: pkgID, From: from, To: to,
		UserConfig: userConfig, Server: reg.Name, Since: time.Now().UTC(),
	})
}

func (t machineTarget) reconfigure(ctx context.Context, reg *Registration, p publishing.Package, deployment, user []byte) error {
	s := t.s
	if _, err := t.ensure(ctx, reg, p, "", deployment); err != nil {
		return err
	}
	v, err := s.store.Version(p.PackageID, p.VersionID)
	if err != nil {
		return err
	}
	// The content moved: only the server that put the version here may
	// move it.
	if e := entryOf(v); v.Location() != p.URL && s.reg.isManaged(e) && s.managedBy(e) == reg.key() {
		if err := v.SetLocation(p.URL); err != nil {
			return err
		}
		if err := s.reg.setManaged(e, &managedVersion{Entry: e, Location: p.URL, Server: reg.key()}); err != nil {
			return err
		}
	}
	if user == nil {
		return nil
	}
	task := pendingTask{Global: reg.machine(), Owner: reg.Owner, PackageID: p.PackageID, To: p.VersionID, UserConfig: user, Server: reg.Name}
	for _, pt := range s.reg.pendingTasks() {
		if pt.sameTarget(&task) && pt.To == p.VersionID {
			pt.UserConfig = user
			return s.reg.addPending(pt)
		}
	}
	return s.writePublication(task)
}

func (t machineTarget) name(pkgID, verID string) (string, string) {
	if v, err := t.s.store.Version(pkgID, verID); err == nil {
		id := identityOf(v)
		return id.Name, id.Version
	}
	for _, v := range t.s.store.Versions() {
		if p, _ := v.ID(); p == pkgID {
			return identityOf(v).Name, ""
		}
	}
	return "", ""
}

// managedBy returns the registration key (or "standalone") that put a
// version in the store.
func (s *Service) managedBy(e catalog.Entry) string {
	for _, m := range s.reg.managedVersions() {
		if m.Entry == e {
			return m.Server
		}
	}
	return ""
}

// addVersion adds version verID of package pkgID from location, unless the
// store holds it, sharing with the store's version from (or the best other
// version of the package). It refuses a package at location that is not the
// one expected. server ("<uid>/<name>" or "standalone") is recorded as the
// one that put it there.
func (s *Service) addVersion(ctx context.Context, location, pkgID, verID, from, server string) (*store.Version, bool, error) {
	if v, err := s.store.Version(pkgID, verID); err == nil {
		return v, false, nil
	}
	var shared string
	v, err := s.store.AddSharing(ctx, location, func(id appvpkg.Identity) (*store.Version, error) {
		if !strings.EqualFold(id.PackageID, pkgID) || !strings.EqualFold(id.VersionID, verID) {
			return nil, errf(KindBadPackage, "the package at %s is PackageId %s VersionId %s, not PackageId %s VersionId %s as expected: the publisher must fix the URL or the package",
				location, id.PackageID, id.VersionID, pkgID, verID)
		}
		prev := s.shareCandidate(pkgID, verID, from)
		if prev != nil {
			_, shared = prev.ID()
		}
		return prev, nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("add %s: %w", location, err)
	}
	e := entryOf(v)
	if err := s.reg.setManaged(e, &managedVersion{Entry: e, Location: location, Server: server}); err != nil {
		return v, true, err
	}
	id := identityOf(v)
	s.ops.Info("package added", "package", id.Name, "version", id.Version, "packageId", id.PackageID, "versionId", id.VersionID,
		"location", location, "server", server, "sharedWith", shared)
	return v, true, nil
}

// shareCandidate chooses the version a new version of a package shares
// with: prefer if the store holds it, else the version with the most blocks
// present; nil when the store has no other version of the package.
func (s *Service) shareCandidate(pkgID, newVer, prefer string) *store.Version {
	var best *store.Version
	var most int64 = -1
	for _, v := range s.store.Versions() {
		p, ver := v.ID()
		if p != strings.ToLower(pkgID) || ver == strings.ToLower(newVer) {
			continue
		}
		if ver == strings.ToLower(prefer) {
			return v
		}
		if n := v.Stats().BlocksPresent; n > most {
			best, most = v, n
		}
	}
	return best
}

// switchOrDefer makes the switch a task describes now, or records it as
// pending when the package is in use by the task's target. It returns
// whether it is pending.
func (s *Service) switchOrDefer(ctx context.Context, task pendingTask) (bool, error) {
	cur, err := s.publishedTo(&task)
	if err != nil {
		return false, err
	}
	if task.To == "" {
		// An upgrade of the version to unpublish may be pending: the
		// version published is then the one it would have replaced.
		for _, pt := range s.reg.pendingTasks() {
			if pt.sameTarget(&task) && pt.To == task.From && pt.From != "" {
				task.From = pt.From
			}
		}
	}
	switch {
	case task.To == "" && !slices.Contains(cur, task.From):
		return false, s.reg.dropPending(task) // not published: nothing to do
	case task.To != "" && len(cur) == 1 && cur[0] == task.To:
		// Published already (a refresh applied again): only its
		// configuration may be new.
		if err := s.writePublication(task); err != nil {
			return false, err
		}
		return false, s.reg.dropPending(task)
	}
	if task.To != "" && len(cur) > 0 {
		task.From = cur[0]
	}
	if len(cur) > 0 && s.targetInUse(&task) {
		if err := s.reg.addPending(task); err != nil {
			return false, err
		}
		s.ops.Info("package switch pending: in use", "packageId", task.PackageID, "from", task.From, "to", task.To,
			"server", task.Server, "target", task.target(), "uid", task.Owner.UID)
		return true, nil
	}
	if err := s.performSwitch(ctx, &task); err != nil {
		return false, err
	}
	return false, s.reg.dropPending(task)
}

// target names a task's target in logs: "machine" or the user's name.
func (t *pendingTask) target() string {
	if t.Global {
		return "machine"
	}
	return "user " + t.Owner.Name
}

// publishedTo returns the versions of the task's package published to its
// target.
func (s *Service) publishedTo(t *pendingTask) ([]string, error) {
	var entries []catalog.Entry
	if t.Global {
		entries = s.machine.Global()
	} else {
		u, err := s.userCatalogOf(t.Owner)
		if err != nil {
			return nil, err
		}
		entries = u.Published()
		u.Close()
	}
	var out []string
	for _, e := range entries {
		if e.PackageID == t.PackageID {
			out = append(out, e.VersionID)
		}
	}
	return out, nil
}

func (s *Service) userCatalogOf(o Owner) (*catalog.User, error) {
	u, err := catalog.OpenUser(o.Home, o.DataHome, o.UID, o.GID)
	if err != nil {
		return nil, fmt.Errorf("the catalog of user %s: %w", o.Name, err)
	}
	return u, nil
}

// targetInUse reports whether a program runs in a virtual environment of
// the task's package: the user's, or for a global task anyone's.
func (s *Service) targetInUse(t *pendingTask) bool {
	key := venvKey(t.Owner.caller(), t.PackageID)
	for _, env := range s.venvs.Running() {
		if len(env.PIDs) > 0 && (env.Key == key || (t.Global && strings.HasSuffix(env.Key, "-"+t.PackageID))) {
			return true
		}
	}
	return false
}

// performSwitch publishes the task's To version to its target in place of
// the versions published there (unpublishes From when To is empty), moving
// the extension points with it. Environments of the package that linger
// with no process are ended first, so the next launch starts the new
// version rather than joining the old one.
func (s *Service) performSwitch(ctx context.Context, t *pendingTask) error {
	c := t.Owner.caller()
	key := venvKey(c, t.PackageID)
	for _, env := range s.venvs.Running() {
		if len(env.PIDs) == 0 && (env.Key == key || (t.Global && strings.HasSuffix(env.Key, "-"+t.PackageID))) {
			if err := s.venvs.Stop(ctx, env.Key); err != nil {
				return err
			}
		}
	}
	cur, err := s.publishedTo(t)
	if err != nil {
		return err
	}
	var newV *store.Version
	var m *appvpkg.Manifest
	if t.To != "" {
		if newV, err = s.store.Version(t.PackageID, t.To); err != nil {
			return fmt.Errorf("switch package %s to version %s: %w (refresh again with appv sync)", t.PackageID, t.To, err)
		}
		if m, err = newV.Manifest(); err != nil {
			return err
		}
	}
	for _, ver := range cur {
		if ver == t.To || (t.To == "" && ver != t.From) {
			continue
		}
		if old, err := s.store.Version(t.PackageID, ver); err == nil {
			if om, err := old.Manifest(); err == nil {
				if err := s.deintegrate(ctx, c, old, om, t.Global); err != nil {
					s.ops.Warn("cannot remove the extension points of the old version", "packageId", t.PackageID, "versionId", ver, "err", err)
				}
			}
		}
		if t.To == "" {
			if err := s.unpublishFrom(t, catalog.Entry{PackageID: t.PackageID, VersionID: ver}); err != nil {
				return err
			}
		}
	}
	verb := "package unpublished"
	if newV != nil {
		if err := s.writePublication(*t); err != nil {
			return err
		}
		if err := s.integrate(ctx, c, newV, m, t.Global); err != nil {
			return fmt.Errorf("integrate %s: %w", m.Identity().Name, err)
		}
		verb = "package published"
		if len(cur) > 0 && !slices.Equal(cur, []string{t.To}) {
			verb = "package upgraded"
		}
	}
	s.gcDue.Store(true)
	s.ops.Info(verb, "packageId", t.PackageID, "from", strings.Join(cur, ","), "to", t.To, "server", t.Server, "target", t.target(), "uid", t.Owner.UID)
	return nil
}

// writePublication writes the catalog entry that publishes the task's To
// version to its target, with its user configuration (unchanged when the
// task has none and the version is published already). Any other version
// of the package published there is unpublished by the catalog.
func (s *Service) writePublication(t pendingTask) error {
	v, err := s.store.Version(t.PackageID, t.To)
	if err != nil {
		return err
	}
	manifest, err := v.Package().ReadAll(appvpkg.ManifestPart, appvpkg.MaxXMLPartSize)
	if err != nil {
		return err
	}
	e := entryOf(v)
	if t.Global {
		cfg := t.UserConfig
		if cfg == nil && s.machine.IsGlobal(e) {
			if cfg, err = s.machine.GlobalUserConfig(e); err != nil {
				return err
			}
		}
		return s.machine.PublishGlobal(e, manifest, cfg)
	}
	u, err := s.userCatalogOf(t.Owner)
	if err != nil {
		return err
	}
	defer u.Close()
	cfg := t.UserConfig
	if cfg == nil && u.IsPublished(e) {
		if cfg, err = u.UserConfig(e); err != nil {
			return err
		}
	}
	return u.Publish(e, manifest, cfg)
}

func (s *Service) unpublishFrom(t *pendingTask, e catalog.Entry) error {
	if t.Global {
		return s.machine.UnpublishGlobal(e)
	}
	u, err := s.userCatalogOf(t.Owner)
	if err != nil {
		return err
	}
	defer u.Close()
	return u.Unpublish(e)
}

// settlePending performs the pending tasks that concern the caller (theirs
// and the machine's) whose packages are no longer in use. A launch calls it
// first, so the launch after the last process of the old version has
// exited runs the new one.
func (s *Service) settlePending(ctx context.Context, c caller) {
	mine := func(t *pendingTask) bool { return t.Global || t.Owner.UID == c.UID }
	if !slices.ContainsFunc(s.reg.pendingTasks(), func(t pendingTask) bool { return mine(&t) }) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runPending(ctx, mine)
}

// runPending performs the pending tasks (those filter accepts, or all)
// whose packages are no longer in use. Service.mu is held. A task that
// fails stays pending and is logged once per distinct error.
func (s *Service) runPending(ctx context.Context, filter func(*pendingTask) bool) {
	for _, t := range s.reg.pendingTasks() {
		if (filter != nil && !filter(&t)) || s.targetInUse(&t) {
			continue
		}
		id := t.target() + "/" + t.PackageID
		if err := s.performSwitch(ctx, &t); err != nil {
			if s.pendingErr[id] != err.Error() {
				s.pendingErr[id] = err.Error()
				s.admin.Error("pending package switch failed; it is tried again", "packageId", t.PackageID, "to", t.To, "target", t.target(), "uid", t.Owner.UID, "err", err)
			}
			continue
		}
		delete(s.pendingErr, id)
		if err := s.reg.dropPending(t); err != nil {
			s.admin.Error("cannot record the pending task as done", "packageId", t.PackageID, "err", err)
		}
	}
}

// noteEnv records the version an environment that is about to start runs,
// so collect knows which versions environments use.
func (s *Service) noteEnv(key, verID string) {
	for _, env := range s.venvs.Running() {
		if env.Key == key {
			return // it runs: a launch joins it, whatever its version
		}
	}
	s.envMu.Lock()
	s.envVer[key] = verID
	s.envMu.Unlock()
}

// collect removes from the store the versions refreshes and standalone
// adds put there that nothing refers to any more: no registration's applied
// document, no global publication, no pending task, no catalog of a user
// known to the service (registration owners and pending tasks' users), no
// environment (an environment whose version is unknown, one found running
// after a restart, keeps every version of its package), no open file.
// Versions added with appv add are never removed by it. Service.mu is held.
func (s *Service) collect(ctx context.Context) {
	managed := s.reg.managedVersions()
	if len(managed) == 0 {
		return
	}
	keep := map[catalog.Entry]bool{}
	owners := map[int]Owner{}
	for _, d := range s.reg.documents(0, true) {
		if !d.reg.machine() {
			owners[d.reg.Owner.UID] = d.reg.Owner
		}
		if d.doc != nil {
			for _, p := range d.doc.Packages {
				keep[catalog.Entry{PackageID: p.PackageID, VersionID: p.VersionID}] = true
			}
		}
	}
	for _, t := range s.reg.pendingTasks() {
		keep[catalog.Entry{PackageID: t.PackageID, VersionID: t.From}] = true
		keep[catalog.Entry{PackageID: t.PackageID, VersionID: t.To}] = true
		if !t.Global {
			owners[t.Owner.UID] = t.Owner
		}
	}
	for _, e := range s.machine.Global() {
		keep[e] = true
	}
	unreadable := map[string]bool{} // uid prefixes of registration keys
	for uid, o := range owners {
		u, err := s.userCatalogOf(o)
		if err != nil {
			// What the user may have published is unknown: keep what their
			// servers put here.
			s.ops.Debug("cannot read a user's catalog; the versions their servers added are kept for now", "user", o.Name, "err", err)
			unreadable[fmt.Sprintf("%d/", uid)] = true
			continue
		}
		for _, e := range u.Published() {
			keep[e] = true
		}
		u.Close()
	}
	running := s.venvs.Running()
	s.envMu.Lock()
	live := map[string]bool{}
	for _, env := range running {
		live[env.Key] = true
		if _, pkg, ok := strings.Cut(env.Key, "-"); ok {
			if ver, known := s.envVer[env.Key]; known {
				keep[catalog.Entry{PackageID: pkg, VersionID: ver}] = true
			} else {
				keep[catalog.Entry{PackageID: pkg, VersionID: "*"}] = true
			}
		}
	}
	for k := range s.envVer {
		if !live[k] {
			delete(s.envVer, k)
		}
	}
	s.envMu.Unlock()
	for _, m := range managed {
		v, err := s.store.Version(m.PackageID, m.VersionID)
		if err != nil {
			_ = s.reg.setManaged(m.Entry, nil) // removed by hand
			continue
		}
		owner, _, _ := strings.Cut(m.Server, "/")
		if keep[m.Entry] || keep[catalog.Entry{PackageID: m.PackageID, VersionID: "*"}] || unreadable[owner+"/"] || v.Refs() > 0 {
			continue
		}
		if err := s.removeVersion(ctx, v); err != nil {
			if !errors.Is(err, store.ErrInUse) {
				s.ops.Warn("cannot remove an old package version; it is tried again", "packageId", m.PackageID, "versionId", m.VersionID, "err", err)
			}
			continue
		}
		s.ops.Info("old package version removed", "package", identityOf(v).Name, "packageId", m.PackageID, "versionId", m.VersionID, "server", m.Server)
	}
}

// removeVersion deletes a version from the store and the machine catalog.
// Service.mu is held.
func (s *Service) removeVersion(ctx context.Context, v *store.Version) error {
	e := entryOf(v)
	if cancel := s.mounts[e.VersionID]; cancel != nil {
		cancel()
	}
	if err := s.store.Remove(ctx, e.PackageID, e.VersionID); err != nil {
		return err
	}
	if err := s.machine.Remove(e); err != nil {
		return err
	}
	return s.reg.setManaged(e, nil)
}
