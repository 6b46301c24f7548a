package integration

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/appv/appv/internal/appvpkg"
)

// ErrSymlinkOut is returned when a directory integration writes to is
// reached through a symlink that leads out of the target's root, or is
// absolute (os.Root follows neither): the user has to replace it with the
// directory, or a relative symlink inside the home.
var ErrSymlinkOut = errors.New("integration: a symlink leads out of the home, or is absolute")

// Package is a package to integrate or deintegrate.
type Package struct {
	// PackageID, VersionID, Name and Version default to the manifest's
	// identity.
	PackageID, VersionID, Name, Version string
	// Manifest holds the extension points (with dynamic configuration
	// already applied). Deintegrate needs it only for packages integrated
	// before the state file existed.
	Manifest *appvpkg.Manifest
	// Launcher is the absolute path of the appv binary that launchers and
	// desktop entries run.
	Launcher string
	// Files reads a file of the package by its package path ("Root/…",
	// "/"-separated): icons. Nil integrates no icons; an error skips that
	// icon (fs.ErrNotExist for a file the package does not have).
	Files func(pkgPath string) ([]byte, error)
}

func (p *Package) fill() error {
	if p.Manifest != nil {
		id := p.Manifest.Identity()
		p.PackageID = firstNonEmpty(p.PackageID, id.PackageID)
		p.VersionID = firstNonEmpty(p.VersionID, id.VersionID)
		p.Name = firstNonEmpty(p.Name, id.Name)
		p.Version = firstNonEmpty(p.Version, id.Version)
	}
	if shortID(p.PackageID) == "" {
		return fmt.Errorf("integration: package %q has no PackageId", p.Name)
	}
	return nil
}

// Integrate integrates a package's extension points at a target: app
// paths become launchers, shortcuts desktop entries (with their icons),
// file type associations MIME types and default applications, URL
// protocols x-scheme-handler defaults. What was at a place before is
// backed up; if another package owns a place, ownership passes to this
// one. A package integrated before (an earlier version, or this one) has
// its points replaced: those the package no longer has are released.
//
// Integrate is idempotent. Integrate and Deintegrate must not run
// concurrently on one target. An error means some points may not be
// integrated; what was integrated is recorded, so Deintegrate still
// removes it. Cache tools (update-desktop-database, update-mime-database,
// gtk-update-icon-cache) that are missing or fail are logged, not
// returned.
func Integrate(ctx context.Context, t *Target, p Package) (err error) {
	if p.Manifest == nil {
		return fmt.Errorf("integration: integrate %s: no manifest", p.Name)
	}
	// The manifest's typed views are empty when it is not valid: say so
	// rather than integrate nothing.
	if _, err := p.Manifest.Marshal(); err != nil {
		return fmt.Errorf("integration: integrate %s: %w", p.Name, err)
	}
	if err := p.fill(); err != nil {
		return err
	}
	s, err := openSession(ctx, t)
	if err != nil {
		return err
	}
	defer s.close()
	defer func() { err = errors.Join(err, s.commit()) }()
	b := &builder{p: &p, paths: s.paths, log: s.log, id8: shortID(p.PackageID), db: s.mimeDB}
	pl, err := b.build()
	if err != nil {
		return err
	}
	for _, a := range pl.defaults {
		// Before writing anything: a mimeapps.list that cannot be read
		// (or is a symlink out of the root) fails the whole integration.
		if _, err := s.list(a.File); err != nil {
			return fmt.Errorf("integration: integrate %s: %s: %w", p.Name, a.File, err)
		}
	}
	if err := s.apply(&p, pl); err != nil {
		return fmt.Errorf("integration: integrate %s: %w", p.Name, err)
	}
	return nil
}

// Deintegrate removes what Integrate integrated for the package and
// restores what it displaced, or passes each point back to the package
// that owned it before. It works from the state file, not the manifest.
// A package that is not integrated, or integrated in another version
// than p.VersionID (when set), is left as it is. Deintegrate is
// idempotent.
func Deintegrate(ctx context.Context, t *Target, p Package) (err error) {
	if err := p.fill(); err != nil {
		return err
	}
	s, err := openSession(ctx, t)
	if err != nil {
		return err
	}
	defer s.close()
	defer func() { err = errors.Join(err, s.commit()) }()
	ps := s.st.Packages[p.PackageID]
	keys := s.st.pointsOf(p.PackageID)
	switch {
	case ps == nil && len(keys) == 0:
		return s.legacyDeintegrate(&p)
	case ps != nil && p.VersionID != "" && ps.VersionID != p.VersionID:
		s.log.Info("not deintegrated: another version of the package is integrated", "package", p.Name, "versionId", p.VersionID, "integrated", ps.VersionID)
		return nil
	}
	var errs []error
	for _, k := range keys {
		errs = append(errs, s.release(k, p.PackageID))
	}
	if ps != nil {
		for _, a := range ps.Added {
			errs = append(errs, s.removeAssoc(a))
		}
	}
	delete(s.st.Packages, p.PackageID)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("integration: deintegrate %s: %w", p.Name, err)
	}
	return nil
}

// session is one Integrate or Deintegrate call.
type session struct {
	ctx   context.Context
	t     *Target
	paths paths
	f     *files
	st    *state
	log   *slog.Logger
	db    *mimeDB
	// lists are the mimeapps.list files read, by root-relative path.
	lists map[string]*mimeAppsList
	// touched are the files written or removed.
	touched map[string]bool
}

type mimeAppsList struct {
	name    string // where it is written (a symlink resolved)
	kf      *keyFile
	mode    fs.FileMode
	changed bool
}

func openSession(ctx context.Context, t *Target) (*session, error) {
	ps, err := t.paths()
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(t.Root)
	if err != nil {
		return nil, fmt.Errorf("integration: %w", err)
	}
	s := &session{ctx: ctx, t: t, paths: ps, log: t.log(), lists: map[string]*mimeAppsList{}, touched: map[string]bool{}}
	s.f = &files{root: root, t: t}
	for _, d := range []string{ps.apps, ps.icons, path.Join(ps.mime, "packages"), ps.bin, path.Dir(ps.mimeApps), ps.backups} {
		if err := s.f.checkDir(d); err != nil {
			root.Close()
			if strings.Contains(err.Error(), "path escapes from parent") {
				return nil, fmt.Errorf("%w: %s in %s: %w", ErrSymlinkOut, d, t.Root, err)
			}
			return nil, fmt.Errorf("integration: %s in %s: %w", d, t.Root, err)
		}
	}
	if s.st, err = s.f.loadState(ps.backups); err != nil {
		root.Close()
		return nil, err
	}
	s.f.created = s.st.addDir
	return s, nil
}

func (s *session) close() { s.f.root.Close() }

func (s *session) mimeDB() *mimeDB {
	if s.db == nil {
		s.db = loadMIMEDB(s.f, s.paths)
	}
	return s.db
}

// apply integrates a plan, first releasing what the package held that the
// plan no longer has.
func (s *session) apply(p *Package, pl plan) error {
	want := map[string]bool{}
	for _, fi := range pl.files {
		want[pointKey(kindFile, fi.path, "")] = true
	}
	for _, d := range pl.defaults {
		want[pointKey(kindDefault, d.File, d.Type)] = true
	}
	var errs []error
	for _, k := range s.st.pointsOf(p.PackageID) {
		if !want[k] {
			errs = append(errs, s.release(k, p.PackageID))
		}
	}
	if old := s.st.Packages[p.PackageID]; old != nil {
		for _, a := range old.Added {
			if !slices.Contains(pl.added, a) {
				errs = append(errs, s.removeAssoc(a))
			}
		}
	}
	ps := &pkgState{VersionID: p.VersionID, Name: p.Name, Version: p.Version}
	s.st.Packages[p.PackageID] = ps
	for _, fi := range pl.files {
		errs = append(errs, s.claimFile(p.PackageID, fi))
	}
	for _, d := range pl.defaults {
		errs = append(errs, s.claimDefault(p.PackageID, d))
	}
	for _, a := range pl.added {
		err := s.addAssoc(a)
		if err == nil {
			ps.Added = append(ps.Added, a)
		}
		errs = append(errs, err)
	}
	if len(ps.Added) == 0 && len(s.st.pointsOf(p.PackageID)) == 0 {
		// Nothing to deintegrate: no state to keep either.
		delete(s.st.Packages, p.PackageID)
	}
	return errors.Join(errs...)
}

func (s *session) release(key, pkg string) error {
	pt := s.st.Points[key]
	if pt == nil {
		return nil
	}
	var err error
	if pt.Kind == kindDefault {
		err = s.releaseDefault(pt, pkg)
	} else {
		err = s.releaseFile(pt, pkg)
	}
	if len(pt.Owners) == 0 {
		delete(s.st.Points, key)
	}
	return err
}

// commit writes the mimeapps.list files changed, removes what is left
// empty, runs the cache tools and saves the state.
func (s *session) commit() error {
	var errs []error
	names := make([]string, 0, len(s.lists))
	for n := range s.lists {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		l := s.lists[n]
		created := slices.Contains(s.st.Created, l.name)
		switch {
		case !l.changed:
		case created && !l.kf.hasKeys():
			errs = append(errs, s.removeFile(l.name))
		default:
			if err := s.f.writeFile(l.name, l.kf.bytes(), l.mode); err != nil {
				errs = append(errs, fmt.Errorf("integration: write %s: %w", l.name, err))
			}
		}
		if created && !l.kf.hasKeys() {
			s.st.Created = slices.DeleteFunc(s.st.Created, func(c string) bool { return c == l.name })
		}
	}
	if s.st.empty() {
		errs = append(errs, s.f.saveState(s.paths.backups, s.st))
	}
	s.cleanDirs()
	s.runTools()
	if !s.st.empty() {
		errs = append(errs, s.f.saveState(s.paths.backups, s.st))
	}
	return errors.Join(errs...)
}

// cleanDirs removes the directories integration created that are empty
// now, deepest first. An applications directory holding only the
// mimeinfo.cache update-desktop-database wrote, and a mime directory
// whose packages are gone (its files are all generated from them), count
// as empty.
func (s *session) cleanDirs() {
	dirs := slices.Clone(s.st.Dirs)
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, d := range dirs {
		ents, err := fs.ReadDir(s.f.root.FS(), d)
		if err != nil && !isNotExist(err) {
			continue
		}
		switch {
		case err != nil:
		case path.Base(d) == "applications" && len(ents) == 1 && ents[0].Name() == "mimeinfo.cache":
			_ = s.f.root.Remove(path.Join(d, "mimeinfo.cache"))
		case path.Base(d) == "packages" && path.Base(path.Dir(d)) == "mime" && !slices.Contains(s.st.Dirs, path.Dir(d)):
			// update-mime-database needs it to empty the database.
			continue
		case path.Base(d) == "mime":
			if pk, err := fs.ReadDir(s.f.root.FS(), path.Join(d, "packages")); len(pk) == 0 && (err == nil || isNotExist(err)) {
				_ = s.f.root.RemoveAll(d)
				s.forget(path.Join(d, "packages"))
			}
		}
		if err := s.f.root.Remove(d); err == nil || isNotExist(err) {
			s.forget(d)
		}
	}
}

func (s *session) forget(dir string) {
	s.st.Dirs = slices.DeleteFunc(s.st.Dirs, func(d string) bool { return d == dir })
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
