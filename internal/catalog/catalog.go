// Package catalog keeps App-V's catalogs: the machine catalog of packages
// added to the machine (and those published globally), and each user's
// catalog of packages published to that user. A package is entitled to a
// user when its UserDeploymentConfiguration.xml is in the user's catalog or,
// for global publishing, in the machine catalog.
//
// # Layout
//
//	<StateDir>/catalog/packages/<PackageId>/<VersionId>/Manifest.xml
//	                                                    DeploymentConfiguration.xml
//	                                                    UserManifest.xml, UserDeploymentConfiguration.xml (global)
//	$XDG_DATA_HOME/appv/catalog/packages/<PackageId>/<VersionId>/UserManifest.xml
//	                                                              UserDeploymentConfiguration.xml
//
// The service runs as root and writes into users' homes; every such write
// goes through an os.Root on the home, so a symlink planted in a home cannot
// redirect it, and what it creates is owned by the user.
package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// The catalog documents, as App-V names them.
const (
	ManifestFile                = "Manifest.xml"
	DeploymentConfigFile        = "DeploymentConfiguration.xml"
	UserManifestFile            = "UserManifest.xml"
	UserDeploymentConfigFile    = "UserDeploymentConfiguration.xml"
	placeholderDeploymentConfig = `<?xml version="1.0" encoding="utf-8"?>
<DeploymentConfiguration xmlns="http://schemas.microsoft.com/appv/2010/deploymentconfiguration" PackageId="%s" />
`
)

// Entry is one package version in a catalog.
type Entry struct {
	PackageID string
	VersionID string
}

// Machine is the machine catalog.
type Machine struct {
	dir string // <StateDir>/catalog
}

// OpenMachine opens (creating) the machine catalog under stateDir.
func OpenMachine(stateDir string) (*Machine, error) {
	dir := filepath.Join(stateDir, "catalog")
	if err := os.MkdirAll(filepath.Join(dir, "packages"), 0o755); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return &Machine{dir: dir}, nil
}

func (m *Machine) versionDir(e Entry) string {
	return filepath.Join(m.dir, "packages", e.PackageID, e.VersionID)
}

// Add records a package version added to the machine: its manifest, and its
// deployment configuration (a placeholder when the package has none).
func (m *Machine) Add(e Entry, manifest, deploymentConfig []byte) error {
	if deploymentConfig == nil {
		deploymentConfig = fmt.Appendf(nil, placeholderDeploymentConfig, e.PackageID)
	}
	return writeFiles(m.versionDir(e), map[string][]byte{ManifestFile: manifest, DeploymentConfigFile: deploymentConfig})
}

// Remove deletes a version's machine catalog entry, global publishing
// included.
func (m *Machine) Remove(e Entry) error {
	if err := os.RemoveAll(m.versionDir(e)); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	_ = os.Remove(filepath.Dir(m.versionDir(e))) // the package dir, if now empty
	return nil
}

// Has reports whether the version is in the machine catalog.
func (m *Machine) Has(e Entry) bool {
	_, err := os.Stat(filepath.Join(m.versionDir(e), ManifestFile))
	return err == nil
}

// Manifest returns the stored manifest of a version.
func (m *Machine) Manifest(e Entry) ([]byte, error) {
	return os.ReadFile(filepath.Join(m.versionDir(e), ManifestFile))
}

// DeploymentConfig returns the stored deployment configuration of a
// version: the DeploymentConfig.xml it was added with, or the placeholder
// Add writes when it had none.
func (m *Machine) DeploymentConfig(e Entry) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(m.versionDir(e), DeploymentConfigFile))
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return data, nil
}

// GlobalUserConfig returns the user configuration a version was published
// globally with (the placeholder when it had none).
func (m *Machine) GlobalUserConfig(e Entry) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(m.versionDir(e), UserDeploymentConfigFile))
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return data, nil
}

// PublishGlobal publishes a version to every user of the machine; any other
// version of the package published globally is unpublished.
func (m *Machine) PublishGlobal(e Entry, userManifest, userConfig []byte) error {
	for _, other := range m.Global() {
		if other.PackageID == e.PackageID && other.VersionID != e.VersionID {
			if err := m.UnpublishGlobal(other); err != nil {
				return err
			}
		}
	}
	if userConfig == nil {
		userConfig = fmt.Appendf(nil, placeholderDeploymentConfig, e.PackageID)
	}
	return writeFiles(m.versionDir(e), map[string][]byte{UserManifestFile: userManifest, UserDeploymentConfigFile: userConfig})
}

// UnpublishGlobal removes global publishing of a version.
func (m *Machine) UnpublishGlobal(e Entry) error {
	for _, f := range []string{UserManifestFile, UserDeploymentConfigFile} {
		if err := os.Remove(filepath.Join(m.versionDir(e), f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("catalog: %w", err)
		}
	}
	return nil
}

// IsGlobal reports whether the version is published globally.
func (m *Machine) IsGlobal(e Entry) bool {
	_, err := os.Stat(filepath.Join(m.versionDir(e), UserDeploymentConfigFile))
	return err == nil
}

// Packages lists the versions in the machine catalog.
func (m *Machine) Packages() []Entry {
	return listEntries(os.DirFS(filepath.Join(m.dir, "packages")), ManifestFile)
}

// Global lists the versions published globally.
func (m *Machine) Global() []Entry {
	return listEntries(os.DirFS(filepath.Join(m.dir, "packages")), UserDeploymentConfigFile)
}

func listEntries(fsys fs.FS, marker string) []Entry {
	var out []Entry
	pkgs, _ := fs.ReadDir(fsys, ".")
	for _, p := range pkgs {
		vers, _ := fs.ReadDir(fsys, p.Name())
		for _, v := range vers {
			if _, err := fs.Stat(fsys, path.Join(p.Name(), v.Name(), marker)); err == nil {
				out = append(out, Entry{PackageID: p.Name(), VersionID: v.Name()})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].PackageID+out[i].VersionID < out[j].PackageID+out[j].VersionID
	})
	return out
}

func writeFiles(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	for name, data := range files {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
	}
	return nil
}

// User is one user's catalog, in the user's home.
type User struct {
	root     *os.Root // the user's home
	rel      string   // catalog dir relative to the home
	uid, gid int
}

// OpenUser opens the catalog of the user whose home is home, under dataHome
// ($XDG_DATA_HOME; "" means ~/.local/share), which must lie inside the home.
// Close releases it.
func OpenUser(home, dataHome string, uid, gid int) (*User, error) {
	if dataHome == "" {
		dataHome = filepath.Join(home, ".local", "share")
	}
	rel, err := filepath.Rel(home, dataHome)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return nil, fmt.Errorf("catalog: XDG_DATA_HOME %s is outside the home %s; appv keeps user catalogs in the home", dataHome, home)
	}
	root, err := os.OpenRoot(home)
	if err != nil {
		return nil, fmt.Errorf("catalog: user home: %w", err)
	}
	return &User{root: root, rel: filepath.Join(rel, "appv", "catalog", "packages"), uid: uid, gid: gid}, nil
}

// Close releases the user catalog.
func (u *User) Close() error { return u.root.Close() }

// mkdirAll creates dir (relative to the home) and any missing parents,
// owned by the user.
func (u *User) mkdirAll(dir string) error {
	var cur string
	for seg := range strings.SplitSeq(filepath.ToSlash(dir), "/") {
		cur = path.Join(cur, seg)
		err := u.root.Mkdir(cur, 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
		if err := u.root.Lchown(cur, u.uid, u.gid); err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
	}
	return nil
}

// Publish publishes a version to the user: its manifest and user
// configuration go into the user's catalog. Any other version of the package
// published to the user is unpublished: a user has one version of a package.
func (u *User) Publish(e Entry, userManifest, userConfig []byte) error {
	for _, other := range u.Published() {
		if other.PackageID == e.PackageID && other.VersionID != e.VersionID {
			if err := u.Unpublish(other); err != nil {
				return err
			}
		}
	}
	if userConfig == nil {
		userConfig = fmt.Appendf(nil, placeholderDeploymentConfig, e.PackageID)
	}
	dir := filepath.Join(u.rel, e.PackageID, e.VersionID)
	if err := u.mkdirAll(dir); err != nil {
		return err
	}
	for name, data := range map[string][]byte{UserManifestFile: userManifest, UserDeploymentConfigFile: userConfig} {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := u.root.WriteFile(tmp, data, 0o600); err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
		if err := u.root.Lchown(tmp, u.uid, u.gid); err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
		if err := u.root.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
	}
	return nil
}

// Unpublish removes a version from the user's catalog.
func (u *User) Unpublish(e Entry) error {
	dir := filepath.Join(u.rel, e.PackageID, e.VersionID)
	if err := u.root.RemoveAll(dir); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	_ = u.root.Remove(filepath.Join(u.rel, e.PackageID))
	return nil
}

// UserConfig returns the user configuration the version was published to
// the user with (the placeholder when it had none).
func (u *User) UserConfig(e Entry) ([]byte, error) {
	data, err := u.root.ReadFile(filepath.Join(u.rel, e.PackageID, e.VersionID, UserDeploymentConfigFile))
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return data, nil
}

// IsPublished reports whether the version is published to the user.
func (u *User) IsPublished(e Entry) bool {
	_, err := u.root.Stat(filepath.Join(u.rel, e.PackageID, e.VersionID, UserDeploymentConfigFile))
	return err == nil
}

// Published lists the versions published to the user.
func (u *User) Published() []Entry {
	sub, err := fs.Sub(u.root.FS(), filepath.ToSlash(u.rel))
	if err != nil {
		return nil
	}
	return listEntries(sub, UserDeploymentConfigFile)
}
