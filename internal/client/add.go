package client

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/store"
)

// handleAdd adds a package to the machine. A new version of a package the
// store holds is added beside the others, sharing their unchanged files
// and blocks, and published nowhere. With OverrideURL it is App-V's MSI
// streaming mode (standalone): see addStandalone.
func (s *Service) handleAdd(ctx context.Context, c caller, req Request, r *reply) {
	if !c.root() {
		r.fail(errf(KindDenied, "adding a package changes the machine: run appv add as root (sudo appv add %s)", req.Location))
		return
	}
	if req.Location == "" {
		r.fail(errf(KindUsage, "appv add needs a path or URL"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.OverrideURL != "" {
		res, err := s.addStandalone(ctx, c, req.Location, req.OverrideURL)
		if err != nil {
			s.ops.Error("add failed", "location", req.OverrideURL, "description", req.Location, "err", err, "uid", c.UID)
			r.fail(err)
			return
		}
		r.result(res)
		return
	}
	var shared string
	v, err := s.store.AddSharing(ctx, req.Location, func(id appvpkg.Identity) (*store.Version, error) {
		prev := s.shareCandidate(id.PackageID, id.VersionID, "")
		if prev != nil {
			_, shared = prev.ID()
		}
		return prev, nil
	})
	if err != nil {
		s.ops.Error("add failed", "location", req.Location, "err", err, "uid", c.UID)
		r.fail(fmt.Errorf("add %s: %w", req.Location, err))
		return
	}
	manifest, err := v.Package().ReadAll(appvpkg.ManifestPart, appvpkg.MaxXMLPartSize)
	if err != nil {
		r.fail(fmt.Errorf("add %s: %w", req.Location, err))
		return
	}
	if err := s.machine.Add(entryOf(v), manifest, nil); err != nil {
		r.fail(err)
		return
	}
	id := identityOf(v)
	s.ops.Info("package added", "package", id.Name, "version", id.Version, "packageId", id.PackageID, "versionId", id.VersionID, "location", req.Location, "sharedWith", shared, "uid", c.UID)
	r.result(AddResult{PackageInfo: s.info(c, v), Action: "added", Shared: shared})
}

// addStandalone is App-V's MSI streaming mode: desc is a local package,
// read for its identity (the package description), whose content is
// streamed from url; the version is added (sharing with the package's
// other versions) and published globally in place of the version published
// before, or, when the package is in use, the switch is a pending task.
// The same command with a newer package is an upgrade. Service.mu is held.
func (s *Service) addStandalone(ctx context.Context, c caller, desc, url string) (AddResult, error) {
	pkg, err := appvpkg.OpenFile(desc)
	if err != nil {
		return AddResult{}, fmt.Errorf("add %s: %w", desc, err)
	}
	data, err := pkg.ReadAll(appvpkg.ManifestPart, appvpkg.MaxXMLPartSize)
	pkg.Close()
	if err != nil {
		return AddResult{}, fmt.Errorf("add %s: %w", desc, err)
	}
	m, err := appvpkg.ParseManifest(data)
	if err != nil {
		return AddResult{}, fmt.Errorf("add %s: %w", desc, err)
	}
	want := m.Identity()
	pkgID, verID := strings.ToLower(want.PackageID), strings.ToLower(want.VersionID)
	before, err := s.publishedTo(&pendingTask{Global: true, PackageID: pkgID})
	if err != nil {
		return AddResult{}, err
	}
	var prefer string
	if len(before) > 0 {
		prefer = before[0]
	}
	v, added, shared, err := s.addVersionChecked(ctx, desc, url, want, prefer)
	if err != nil {
		return AddResult{}, err
	}
	if !s.machine.Has(entryOf(v)) || added {
		manifest, err := v.Package().ReadAll(appvpkg.ManifestPart, appvpkg.MaxXMLPartSize)
		if err == nil {
			err = s.machine.Add(entryOf(v), manifest, nil)
		}
		if err != nil {
			return AddResult{}, err
		}
	}
	pending, err := s.switchOrDefer(ctx, pendingTask{Global: true, Owner: Owner{Name: "root"}, PackageID: pkgID, To: verID,
		Server: "standalone", Since: time.Now().UTC()})
	if err != nil {
		return AddResult{}, fmt.Errorf("publish %s globally: %w", want.Name, err)
	}
	res := AddResult{Action: "published", Shared: shared}
	if len(before) > 0 && before[0] != verID {
		res.Action, res.FromVersion = "upgraded", before[0]
		if old, err := s.store.Version(pkgID, before[0]); err == nil {
			res.FromVersion = identityOf(old).Version
		}
	}
	if pending {
		res.Action = ActionPending
	}
	s.collect(ctx) // the version it replaced, unless something still uses it
	res.PackageInfo = s.info(c, v)
	return res, nil
}

// addVersionChecked adds the package at url, which must be the package
// desc describes, sharing with the package's version prefer (or its best
// other version). A package at url of another identity is refused, naming
// both. It returns the version, whether it was added now, and the version
// it shares with.
func (s *Service) addVersionChecked(ctx context.Context, desc, url string, want appvpkg.Identity, prefer string) (*store.Version, bool, string, error) {
	mismatch := func(got appvpkg.Identity) error {
		if strings.EqualFold(got.PackageID, want.PackageID) && strings.EqualFold(got.VersionID, want.VersionID) {
			return nil
		}
		return errf(KindBadPackage, "the package at %s (%s %s, PackageId %s, VersionId %s) is not the package %s describes (%s %s, PackageId %s, VersionId %s): point --override-url at this package's content",
			url, got.Name, got.Version, got.PackageID, got.VersionID, desc, want.Name, want.Version, want.PackageID, want.VersionID)
	}
	if v, err := s.store.Version(want.PackageID, want.VersionID); err == nil {
		if v.Location() != url {
			// Streamed from the URL given now, once it is known to hold
			// this package: a standalone add says where the content is.
			got, err := s.identityAt(ctx, url)
			if err != nil {
				return nil, false, "", fmt.Errorf("add %s from %s: %w", desc, url, err)
			}
			if err := mismatch(got); err != nil {
				return nil, false, "", err
			}
			if err := v.SetLocation(url); err != nil {
				return nil, false, "", err
			}
		}
		return v, false, "", nil
	}
	var shared string
	v, err := s.store.AddSharing(ctx, url, func(got appvpkg.Identity) (*store.Version, error) {
		if err := mismatch(got); err != nil {
			return nil, err
		}
		prev := s.shareCandidate(got.PackageID, got.VersionID, prefer)
		if prev != nil {
			_, shared = prev.ID()
		}
		return prev, nil
	})
	if err != nil {
		return nil, false, "", fmt.Errorf("add %s from %s: %w", desc, url, err)
	}
	e := entryOf(v)
	if err := s.reg.setManaged(e, &managedVersion{Entry: e, Location: url, Server: "standalone"}); err != nil {
		return v, true, shared, err
	}
	id := identityOf(v)
	s.ops.Info("package added", "package", id.Name, "version", id.Version, "packageId", id.PackageID, "versionId", id.VersionID,
		"location", url, "description", desc, "server", "standalone", "sharedWith", shared, "uid", 0)
	return v, true, shared, nil
}

// identityAt reads the identity of the package at a location, opened as
// the store opens sources.
func (s *Service) identityAt(ctx context.Context, location string) (appvpkg.Identity, error) {
	src, err := s.openSource(ctx, location)
	if err != nil {
		return appvpkg.Identity{}, err
	}
	defer src.Close()
	pkg, err := appvpkg.Open(src, src.Size())
	if err != nil {
		return appvpkg.Identity{}, err
	}
	data, err := pkg.ReadAll(appvpkg.ManifestPart, appvpkg.MaxXMLPartSize)
	if err != nil {
		return appvpkg.Identity{}, err
	}
	m, err := appvpkg.ParseManifest(data)
	if err != nil {
		return appvpkg.Identity{}, err
	}
	return m.Identity(), nil
}
