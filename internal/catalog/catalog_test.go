package catalog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMachineCatalog(t *testing.T) {
	m, err := OpenMachine(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v1 := Entry{"p1", "v1"}
	v2 := Entry{"p1", "v2"}
	if err := m.Add(v1, []byte("<m1/>"), nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Add(v2, []byte("<m2/>"), []byte("<dc/>")); err != nil {
		t.Fatal(err)
	}
	if !m.Has(v1) || len(m.Packages()) != 2 {
		t.Fatalf("packages %v", m.Packages())
	}
	if err := m.PublishGlobal(v1, []byte("<um/>"), nil); err != nil {
		t.Fatal(err)
	}
	if !m.IsGlobal(v1) {
		t.Fatal("v1 not global")
	}
	// Publishing v2 globally unpublishes v1: one version per package.
	if err := m.PublishGlobal(v2, []byte("<um/>"), nil); err != nil {
		t.Fatal(err)
	}
	if m.IsGlobal(v1) || !m.IsGlobal(v2) || len(m.Global()) != 1 {
		t.Fatalf("global %v", m.Global())
	}
	if err := m.UnpublishGlobal(v2); err != nil {
		t.Fatal(err)
	}
	if m.IsGlobal(v2) || !m.Has(v2) {
		t.Fatal("unpublish must keep the machine entry")
	}
	if err := m.Remove(v2); err != nil {
		t.Fatal(err)
	}
	if m.Has(v2) {
		t.Fatal("removed entry still there")
	}
}

func TestUserCatalog(t *testing.T) {
	home := t.TempDir()
	u, err := OpenUser(home, "", os.Getuid(), os.Getgid())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	v1, v2 := Entry{"p1", "v1"}, Entry{"p1", "v2"}
	if err := u.Publish(v1, []byte("<um/>"), nil); err != nil {
		t.Fatal(err)
	}
	if !u.IsPublished(v1) {
		t.Fatal("not published")
	}
	if _, err := os.Stat(filepath.Join(home, ".local/share/appv/catalog/packages/p1/v1", UserDeploymentConfigFile)); err != nil {
		t.Fatalf("catalog not at the documented place: %v", err)
	}
	if err := u.Publish(v2, []byte("<um/>"), nil); err != nil {
		t.Fatal(err)
	}
	if u.IsPublished(v1) || !u.IsPublished(v2) || len(u.Published()) != 1 {
		t.Fatalf("published %v", u.Published())
	}
	if err := u.Unpublish(v2); err != nil {
		t.Fatal(err)
	}
	if len(u.Published()) != 0 {
		t.Fatalf("published %v after unpublish", u.Published())
	}
}

// TestUserCatalogSymlinkCannotEscape plants a symlink where the catalog goes;
// the root service must not follow it out of the home.
func TestUserCatalogSymlinkCannotEscape(t *testing.T) {
	home, outside := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".local/share"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(home, ".local/share/appv")); err != nil {
		t.Fatal(err)
	}
	u, err := OpenUser(home, "", os.Getuid(), os.Getgid())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if err := u.Publish(Entry{"p", "v"}, []byte("x"), nil); err == nil {
		t.Fatal("publish followed a symlink out of the home")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("something was written outside the home: %v", ents)
	}
	if _, err := OpenUser(home, "/elsewhere", 0, 0); err == nil {
		t.Fatal("a data home outside the home was accepted")
	}
}

// TestStoredConfigurations: the configurations a version was added and
// published with read back as written, and a version added without one
// reads back as the placeholder of its package.
func TestStoredConfigurations(t *testing.T) {
	m, err := OpenMachine(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, bare := Entry{"p1", "v1"}, Entry{"p2", "v1"}
	if err := m.Add(e, []byte("<m/>"), []byte("<dc/>")); err != nil {
		t.Fatal(err)
	}
	if err := m.Add(bare, []byte("<m/>"), nil); err != nil {
		t.Fatal(err)
	}
	if got, err := m.DeploymentConfig(e); err != nil || string(got) != "<dc/>" {
		t.Errorf("DeploymentConfig = %q, %v", got, err)
	}
	if got, err := m.DeploymentConfig(bare); err != nil || !strings.Contains(string(got), `PackageId="p2"`) {
		t.Errorf("placeholder DeploymentConfig = %q, %v", got, err)
	}
	if _, err := m.GlobalUserConfig(e); err == nil {
		t.Error("GlobalUserConfig of a version not published globally succeeded")
	}
	if err := m.PublishGlobal(e, []byte("<um/>"), []byte("<uc/>")); err != nil {
		t.Fatal(err)
	}
	if got, err := m.GlobalUserConfig(e); err != nil || string(got) != "<uc/>" {
		t.Errorf("GlobalUserConfig = %q, %v", got, err)
	}

	u, err := OpenUser(t.TempDir(), "", os.Getuid(), os.Getgid())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if err := u.Publish(e, []byte("<um/>"), []byte("<user/>")); err != nil {
		t.Fatal(err)
	}
	if got, err := u.UserConfig(e); err != nil || string(got) != "<user/>" {
		t.Errorf("UserConfig = %q, %v", got, err)
	}
	if _, err := u.UserConfig(bare); err == nil {
		t.Error("UserConfig of a version not published to the user succeeded")
	}
}
