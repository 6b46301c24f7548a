package client

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/appv/appv/internal/appvpkg"
)

// launcherMarker identifies launchers appv wrote, so unpublish removes only
// its own files.
const launcherMarker = "# appv launcher"

// appsOf lists a manifest's applications with their app-path commands.
func appsOf(m *appvpkg.Manifest) []AppInfo {
	cmds := map[string]string{}
	for _, x := range m.Extensions() {
		if x.AppPath != nil {
			target := x.AppPath.ApplicationID
			if target == "" {
				target = x.AppPath.ApplicationPath
			}
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

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (s *Service) launcher(cmd string, id appvpkg.Identity) []byte {
	return fmt.Appendf(nil, "#!/bin/sh\n%s for %s from package %s %s (%s).\n# Managed by appv: appv unpublish %s removes it and restores what was here.\nexec %s launch %s -- \"$@\"\n",
		launcherMarker, cmd, id.Name, id.Version, id.PackageID, id.Name, shellQuote(s.opts.Exe), shellQuote(cmd))
}

// integrationTarget is where extension points go: the user's home (through
// an os.Root, files owned by the user) or the machine.
type integrationTarget struct {
	root       *os.Root
	binDir     string // relative to root
	backupDir  string // relative to root
	uid, gid   int
	chownFiles bool
}

func (s *Service) target(c caller, global bool) (*integrationTarget, error) {
	if global {
		root, err := os.OpenRoot("/")
		if err != nil {
			return nil, err
		}
		return &integrationTarget{
			root: root, binDir: strings.TrimPrefix(s.cfg.GlobalBinDir, "/"),
			backupDir: strings.TrimPrefix(filepath.Join(s.cfg.StateDir, "integration", "backups"), "/"),
		}, nil
	}
	root, err := os.OpenRoot(c.Home)
	if err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(c.Home, filepath.Join(c.DataHome, "appv", "integration", "backups"))
	if err != nil || strings.HasPrefix(rel, "..") {
		root.Close()
		return nil, fmt.Errorf("data home %s is outside the home", c.DataHome)
	}
	return &integrationTarget{root: root, binDir: ".local/bin", backupDir: rel, uid: c.UID, gid: c.GID, chownFiles: true}, nil
}

func (t *integrationTarget) mkdirAll(dir string) error {
	var cur string
	for seg := range strings.SplitSeq(dir, "/") {
		cur = path.Join(cur, seg)
		err := t.root.Mkdir(cur, 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if t.chownFiles {
			if err := t.root.Lchown(cur, t.uid, t.gid); err != nil {
				return err
			}
		}
	}
	return nil
}

// integrate writes the manifest's app paths as launchers on PATH, backing up
// anything that was there that appv did not write.
func (s *Service) integrate(c caller, m *appvpkg.Manifest, global bool) error {
	t, err := s.target(c, global)
	if err != nil {
		return err
	}
	defer t.root.Close()
	id := m.Identity()
	for _, x := range m.Extensions() {
		if x.AppPath == nil || x.AppPath.Name == "" || strings.ContainsAny(x.AppPath.Name, "/\\\x00") {
			continue
		}
		if err := t.mkdirAll(t.binDir); err != nil {
			return fmt.Errorf("integrate %s: %w", x.AppPath.Name, err)
		}
		dst := path.Join(t.binDir, x.AppPath.Name)
		if old, err := t.root.ReadFile(dst); err == nil && !bytes.Contains(old, []byte(launcherMarker)) {
			if err := t.mkdirAll(path.Join(t.backupDir, "bin")); err != nil {
				return err
			}
			if err := t.root.Rename(dst, path.Join(t.backupDir, "bin", x.AppPath.Name)); err != nil {
				return fmt.Errorf("integrate %s: back up the existing %s: %w", x.AppPath.Name, dst, err)
			}
		}
		tmp := dst + ".appv-tmp"
		if err := t.root.WriteFile(tmp, s.launcher(x.AppPath.Name, id), 0o755); err != nil {
			return fmt.Errorf("integrate %s: %w", x.AppPath.Name, err)
		}
		if t.chownFiles {
			if err := t.root.Lchown(tmp, t.uid, t.gid); err != nil {
				return err
			}
		}
		if err := t.root.Rename(tmp, dst); err != nil {
			return fmt.Errorf("integrate %s: %w", x.AppPath.Name, err)
		}
	}
	return nil
}

// deintegrate removes appv's launchers for the manifest's app paths and
// restores what they replaced.
func (s *Service) deintegrate(c caller, m *appvpkg.Manifest, global bool) error {
	t, err := s.target(c, global)
	if err != nil {
		return err
	}
	defer t.root.Close()
	var errs []error
	for _, x := range m.Extensions() {
		if x.AppPath == nil || x.AppPath.Name == "" || strings.ContainsAny(x.AppPath.Name, "/\\\x00") {
			continue
		}
		dst := path.Join(t.binDir, x.AppPath.Name)
		if old, err := t.root.ReadFile(dst); err == nil && bytes.Contains(old, []byte(launcherMarker)) {
			errs = append(errs, t.root.Remove(dst))
		}
		backup := path.Join(t.backupDir, "bin", x.AppPath.Name)
		if _, err := t.root.Lstat(backup); err == nil {
			if _, err := t.root.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, t.root.Rename(backup, dst))
			}
		}
	}
	return errors.Join(errs...)
}
