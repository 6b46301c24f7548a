package config

import (
	"path/filepath"
	"testing"
)

func TestLoadSaveEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "client.json")
	t.Setenv("APPV_CONFIG", file)
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.AutoLoad != 1 || c.PackageInstallationRoot != "/var/lib/appv/packages" {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Set("autoload", "2"); err != nil {
		t.Fatal(err)
	}
	if err := c.Set("PackageSourceRoot", "http://mirror:8080"); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	c2, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c2.AutoLoad != 2 || c2.PackageSourceRoot != "http://mirror:8080" {
		t.Fatalf("reloaded: %+v", c2)
	}
	// The environment wins, and moving StateDir/RunDir moves what is under them.
	t.Setenv("APPV_STATEDIR", "/tmp/s")
	t.Setenv("APPV_RUNDIR", "/tmp/r")
	c3, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c3.PackageInstallationRoot != "/tmp/s/packages" || c3.Socket != "/tmp/r/appv.sock" || c3.MountDir != "/tmp/r/fs" {
		t.Fatalf("derived paths: %+v", c3)
	}
}

func TestSetRejects(t *testing.T) {
	c := Defaults()
	for _, tc := range []struct{ k, v string }{
		{"AutoLoad", "many"}, {"SharedContentStoreMode", "perhaps"}, {"NoSuchSetting", "1"},
	} {
		if err := c.Set(tc.k, tc.v); err == nil {
			t.Errorf("Set(%s, %s) accepted", tc.k, tc.v)
		}
	}
	c.AutoLoad = 7
	if err := c.Validate(); err == nil {
		t.Error("AutoLoad 7 validated")
	}
}
