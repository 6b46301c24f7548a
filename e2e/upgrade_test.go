package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appv/appv/internal/harness"
)

// The upgrade test of App-V's "How to Configure the App-V System for Package
// Upgrade" (reference/appv-4-package-upgrade-and-streaming.md), once per
// streaming set-up of appv server: publish v1, launch, publish v2; the next
// launch runs v2, the user's settings are kept and the store grows by about
// what changed. The fifth set-up, standalone mode, is TestStandaloneUpgrade,
// and the upgrade while the application runs is
// TestRefreshUpgradeWhileRunning (refresh_test.go): both are the client's
// alone.

// upgradeEnv is a client machine with one user, and an appv server.
type upgradeEnv struct {
	*env
	user   *harness.User
	server *harness.AppvServer
	pkgs   upgradePackages
	dir    string // world-readable scratch directory
}

func newUpgradeEnv(t *testing.T) *upgradeEnv {
	e := newEnv(t, 1)
	// The test user reads the share and the server's files through dir.
	dir := t.TempDir()
	must(t, os.Chmod(filepath.Dir(dir), 0o755))
	must(t, os.Chmod(dir, 0o755))
	e.mustAppv(nil, "client", "config", "set", "AutoLoad", "0") // what is fetched is what the test does
	return &upgradeEnv{env: e, user: e.users[0], dir: dir, pkgs: buildUpgradePackages(t, e.svc.Bin, dir)}
}

func (u *upgradeEnv) startServer() {
	t := u.t
	srv, err := harness.StartServer(u.svc.Bin, filepath.Join(u.dir, "server"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Stop()
		if t.Failed() {
			t.Logf("server log:\n%s", srv.Logs())
		}
	})
	u.server = srv
	u.admin("identity", "add", "user", u.user.Name)
	tokenFile := filepath.Join(u.user.Home, "appv.token")
	u.admin("token", "create", "user:"+u.user.Name, "-o", tokenFile)
	must(t, os.Chown(tokenFile, u.user.UID, u.user.GID))
	u.mustAppv(u.user, "publishing-server", "add", "corp", srv.URL, "--token-file", tokenFile)
}

func (u *upgradeEnv) admin(args ...string) string {
	u.t.Helper()
	r, err := u.server.Admin(context.Background(), args...)
	if err != nil || r.Code != 0 {
		u.t.Fatalf("appv admin %s: exit %d, %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, err, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// launch runs e2eapp as the user and returns its first output line.
func (u *upgradeEnv) launch() string {
	u.t.Helper()
	return strings.TrimSpace(u.mustAppv(u.user, "launch", "e2eapp"))
}

// checkUpgrade is the upgrade test: publishV1 publishes v1 and the user's
// sync adds it; the user launches it, then (with v1 wholly local, as
// after long use) publishV2 publishes v2; after sync the next launch runs v2
// with the user's settings kept, only v2 is published, the store grew by
// about what changed, and v1 (nothing refers to it) is removed.
func (u *upgradeEnv) checkUpgrade(publishV1, publishV2 func()) {
	t := u.t
	publishV1()
	u.mustAppv(u.user, "sync")
	if out := u.launch(); !strings.HasPrefix(out, "version 1 launches=1") {
		t.Fatalf("the first launch printed %q, want v1 and launches=1", out)
	}
	u.mustAppv(nil, "mount", u.pkgs.ver1)
	store := filepath.Join(u.svc.State, "packages")
	before := storeUsage(t, store)

	publishV2()
	u.mustAppv(u.user, "sync")
	out := u.launch()
	if !strings.HasPrefix(out, "version 2") {
		t.Fatalf("the launch after the upgrade printed %q, want v2", out)
	}
	if !strings.Contains(out, "launches=2") {
		t.Errorf("the launch after the upgrade printed %q: the settings v1 wrote (launches=1) were lost", out)
	}
	u.mustAppv(nil, "mount", u.pkgs.ver2)
	grew := storeUsage(t, store) - before
	t.Logf("the store grew by %d bytes for an upgrade that changed %d bytes (%d unchanged)", grew, u.pkgs.changed, u.pkgs.unchangedBytes)
	if grew > u.pkgs.changed+1<<20 || grew < u.pkgs.changed-256<<10 {
		t.Errorf("the store grew by %d bytes; want about the %d bytes v2 changed (unchanged files and blocks shared with v1)", grew, u.pkgs.changed)
	}
	in := u.versionsInStore(u.user)
	if v2 := in[u.pkgs.ver2]; !v2.Published {
		t.Errorf("v2 after the upgrade: %+v; want it published", v2)
	}
	u.waitGone(u.pkgs.ver1)
}

// TestUpgradeContentOnServer: App-V's "Management Server for both publishing
// and streaming": the packages are uploaded to appv server.
func TestUpgradeContentOnServer(t *testing.T) {
	u := newUpgradeEnv(t)
	u.startServer()
	u.checkUpgrade(
		func() { u.admin("package", "import", u.pkgs.v1, "--entitle", "user:"+u.user.Name) },
		func() { u.admin("package", "add-version", u.pkgs.pkgID, u.pkgs.v2) },
	)
}

// TestUpgradeContentOnNginx: "Management Server for publishing and an IIS
// Server for streaming", with Debian's nginx as the web server.
func TestUpgradeContentOnNginx(t *testing.T) {
	u := newUpgradeEnv(t)
	root := filepath.Join(u.dir, "www")
	must(t, os.MkdirAll(filepath.Join(root, "content", "e2eapp"), 0o755))
	copyFile(t, u.pkgs.v1, filepath.Join(root, "content", "e2eapp", "E2eApp-1.appv"))
	copyFile(t, u.pkgs.v2, filepath.Join(root, "content", "e2eapp", "E2eApp-2.appv"))
	ng, err := harness.StartNginx(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ng.Stop)
	u.startServer()
	u.checkUpgrade(
		func() {
			u.admin("package", "import", ng.URL+"/content/e2eapp/E2eApp-1.appv", "--entitle", "user:"+u.user.Name)
		},
		func() { u.admin("package", "add-version", u.pkgs.pkgID, ng.URL+"/content/e2eapp/E2eApp-2.appv") },
	)
}

// TestUpgradeContentOnHTTPServer: "a Streaming Server for streaming": a
// second, plain HTTP server holds the content.
func TestUpgradeContentOnHTTPServer(t *testing.T) {
	u := newUpgradeEnv(t)
	root := filepath.Join(u.dir, "content")
	must(t, os.MkdirAll(root, 0o755))
	copyFile(t, u.pkgs.v1, filepath.Join(root, "E2eApp-1.appv"))
	copyFile(t, u.pkgs.v2, filepath.Join(root, "E2eApp-2.appv"))
	cs := newContentServer(t, root)
	u.startServer()
	u.checkUpgrade(
		func() { u.admin("package", "import", cs.URL+"/E2eApp-1.appv", "--entitle", "user:"+u.user.Name) },
		func() { u.admin("package", "add-version", u.pkgs.pkgID, cs.URL+"/E2eApp-2.appv") },
	)
	if cs.Sent() == 0 {
		t.Error("the content server sent nothing: the client did not stream from it")
	}
}

// TestUpgradeContentOnShare: "a File Share for Streaming": the packages are
// registered at a path every client can read.
func TestUpgradeContentOnShare(t *testing.T) {
	u := newUpgradeEnv(t)
	share := filepath.Join(u.dir, "share", "CONTENT", "e2eapp")
	must(t, os.MkdirAll(share, 0o755))
	v1, v2 := filepath.Join(share, "V1", "E2eApp.appv"), filepath.Join(share, "V2", "E2eApp.appv")
	copyFile(t, u.pkgs.v1, v1)
	copyFile(t, u.pkgs.v2, v2)
	u.startServer()
	u.checkUpgrade(
		func() { u.admin("package", "import", "--register", v1, "--entitle", "user:"+u.user.Name) },
		func() { u.admin("package", "add-version", "--register", u.pkgs.pkgID, v2) },
	)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	must(t, err)
	must(t, os.MkdirAll(filepath.Dir(to), 0o755))
	must(t, os.WriteFile(to, data, 0o644))
}
