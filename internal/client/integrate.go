package client

import (
	"context"
	"path"
	"path/filepath"
	"strings"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/integration"
	"github.com/appv/appv/internal/store"
)

// appsOf lists a manifest's applications with their app-path commands.
func appsOf(m *appvpkg.Manifest) []AppInfo {
	// An application may have several commands (a symlink's name too);
	// the one named like the executable wins, else the first in order.
	cmds := map[string]string{}
	for _, x := range m.Extensions() {
		if x.AppPath == nil {
			continue
		}
		target := x.AppPath.ApplicationID
		if target == "" {
			target = x.AppPath.ApplicationPath
		}
		base := path.Base(strings.ReplaceAll(target, `\`, "/"))
		if old, ok := cmds[target]; !ok || (old != base && (x.AppPath.Name == base || x.AppPath.Name < old)) {
			cmds[target] = x.AppPath.Name
		}
	}
	var out []AppInfo
	for _, a := range m.Applications() {
		name := a.DisplayName
		if name == "" {
			name = path.Base(strings.ReplaceAll(a.ID, `\`, "/"))
		}
		out = append(out, AppInfo{ID: a.ID, Name: name, Command: cmds[a.ID]})
	}
	return out
}

// integrationFor says where a caller's (or the machine's) extension points
// go.
func (s *Service) integrationFor(c caller, global bool) *integration.Target {
	if global {
		return integration.GlobalTarget(filepath.Join(s.cfg.StateDir, "integration"), s.cfg.GlobalBinDir)
	}
	return integration.UserTarget(c.Home, c.DataHome, "", c.UID, c.GID)
}

// integrate writes the package's extension points (app paths, shortcuts,
// icons, file types, URL protocols) for the caller or the machine, backing up
// what they replace (internal/integration).
func (s *Service) integrate(ctx context.Context, c caller, v *store.Version, m *appvpkg.Manifest, global bool) error {
	p, ver := v.ID()
	return integration.Integrate(ctx, s.integrationFor(c, global), integration.Package{
		PackageID: p, VersionID: ver, Manifest: m, Launcher: s.opts.Exe,
		Files: func(name string) ([]byte, error) { return v.Package().ReadAll(name, 16<<20) },
	})
}

// deintegrate removes the package's extension points and restores what they
// replaced.
func (s *Service) deintegrate(ctx context.Context, c caller, v *store.Version, m *appvpkg.Manifest, global bool) error {
	p, ver := v.ID()
	return integration.Deintegrate(ctx, s.integrationFor(c, global), integration.Package{
		PackageID: p, VersionID: ver, Manifest: m, Launcher: s.opts.Exe,
		Files: func(name string) ([]byte, error) { return v.Package().ReadAll(name, 16<<20) },
	})
}
