package e2e

import (
	"crypto/rand"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/client"
	"github.com/appv/appv/internal/harness"
	"github.com/appv/appv/internal/publishing"
)

// The upgrade story of App-V's "How to Configure the App-V System for
// Package Upgrade" (../shared/reference/appv-4-package-upgrade-and-streaming.md)
// on the client: a user's publishing server lists v1, then v2 built from the
// same tree with one file changed and one added; and App-V's MSI streaming
// mode (standalone).

// upgradeProgram prints the package's greeting and counts its launches in
// a settings file under ~/.config; "wait FILE" keeps it running until FILE
// exists, then it reads the greeting again (the version it runs).
const upgradeProgram = `package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func greeting() string {
	g, err := os.ReadFile("/opt/e2eapp/share/greeting.txt")
	if err != nil {
		fmt.Fprintln(os.Stderr, "read greeting:", err)
		os.Exit(10)
	}
	return string(g)
}

func main() {
	first := greeting()
	home, _ := os.UserHomeDir()
	dir := filepath.Join(home, ".config", "e2eapp")
	_ = os.MkdirAll(dir, 0o755)
	settings := filepath.Join(dir, "settings.ini")
	old, _ := os.ReadFile(settings)
	if err := os.WriteFile(settings, append(old, "launched\n"...), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "write settings:", err)
		os.Exit(14)
	}
	fmt.Printf("%s launches=%d\n", first, len(old)/len("launched\n")+1)
	if len(os.Args) == 3 && os.Args[1] == "wait" {
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(os.Args[2]); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		fmt.Printf("still running: %s\n", greeting())
	}
}
`

// upgradePackages are two versions of one package.
type upgradePackages struct {
	v1, v2         string // the .appv files, v1.appv and v2.appv in one directory
	pkgID          string
	ver1, ver2     string // VersionIds
	changed        int64  // bytes of v2's files that are not in v1
	unchangedBytes int64  // bytes of v2's files shared with v1
}

// buildUpgradePackages builds v1 (version 1.0.0.0) and v2 (2.0.0.0, same
// PackageId): v2 changes the greeting and adds a 2 MiB file; the program
// and 16 MiB of data stay the same.
func buildUpgradePackages(t *testing.T, appv, outDir string) upgradePackages {
	t.Helper()
	src := t.TempDir()
	for name, data := range map[string]string{"main.go": upgradeProgram, "go.mod": "module e2eapp\ngo 1.26\n"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tree := t.TempDir()
	for _, d := range []string{"bin", "share"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-o", filepath.Join(tree, "bin", "e2eapp"), ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the test program: %v\n%s", err, out)
	}
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(tree, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data := make([]byte, 16<<20)
	_, _ = rand.Read(data)
	write("share/data.bin", data)
	write("share/greeting.txt", []byte("version 1"))
	up := upgradePackages{v1: filepath.Join(outDir, "v1.appv"), v2: filepath.Join(outDir, "v2.appv")}
	create := func(version, out string, extra ...string) {
		t.Helper()
		args := append([]string{"package", "create", "-q", "--from-dir", tree, "--name", "E2eApp", "--version", version, "--root", "/opt/e2eapp", "-o", out}, extra...)
		if out, err := exec.Command(appv, args...).CombinedOutput(); err != nil {
			t.Fatalf("package create %s: %v\n%s", version, err, out)
		}
	}
	create("1.0.0.0", up.v1)
	id1 := packageIdentity(t, up.v1)
	up.pkgID, up.ver1 = id1.PackageID, id1.VersionID

	extra := make([]byte, 2<<20)
	_, _ = rand.Read(extra)
	write("share/extra.bin", extra)
	write("share/greeting.txt", []byte("version 2"))
	create("2.0.0.0", up.v2, "--package-id", up.pkgID)
	up.ver2 = packageIdentity(t, up.v2).VersionID
	st, err := os.Stat(filepath.Join(tree, "bin", "e2eapp"))
	if err != nil {
		t.Fatal(err)
	}
	up.changed = int64(len(extra) + len("version 2"))
	up.unchangedBytes = int64(len(data)) + st.Size()
	return up
}

func packageIdentity(t *testing.T, file string) appvpkg.Identity {
	t.Helper()
	_, m := openManifest(t, file)
	return m.Identity()
}

// testPublishingServer is a publishing server as appv server's contract
// has it: the document at / (ETag, 304) and package content at
// /content/<VersionId>.appv with Range (http.ServeContent), both only with
// the bearer token. It counts the content bytes it sends.
type testPublishingServer struct {
	*httptest.Server
	token string // guarded by mu: a test rotates it
	sent  atomic.Int64

	mu    sync.Mutex
	doc   []byte
	files map[string]string // VersionId -> .appv file
}

func newTestPublishingServer(t *testing.T, token string) *testPublishingServer {
	ps := &testPublishingServer{token: token, files: map[string]string{}}
	ps.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ps.mu.Lock()
		token := ps.token
		ps.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", `Bearer realm="appv"`)
			http.Error(w, "a valid token is required", http.StatusUnauthorized)
			return
		}
		ps.mu.Lock()
		doc := ps.doc
		file := ps.files[strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/content/"), ".appv")]
		ps.mu.Unlock()
		switch {
		case r.URL.Path == "/":
			publishing.ServeDocument(w, r, doc, "")
		case strings.HasPrefix(r.URL.Path, "/content/") && file != "":
			f, err := os.Open(file)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			defer f.Close()
			http.ServeContent(&countWriter{w, &ps.sent}, r, "", time.Time{}, f)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ps.Close)
	return ps
}

type countWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// publish makes the document list version verID of pkgID, from file, at
// its server-relative content URL.
func (ps *testPublishingServer) publish(t *testing.T, pkgID, verID, file string) {
	t.Helper()
	body, err := publishing.Marshal(&publishing.Document{Packages: []publishing.Package{
		{PackageID: pkgID, VersionID: verID, URL: "/content/" + verID + ".appv"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.doc, ps.files[verID] = body, file
}

// publishNothing makes the document list no package.
func (ps *testPublishingServer) publishNothing(t *testing.T) {
	t.Helper()
	body, err := publishing.Marshal(&publishing.Document{})
	if err != nil {
		t.Fatal(err)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.doc = body
}

// storeUsage is the disk space the package store takes: allocated blocks,
// each hard-linked file counted once, as du does.
func storeUsage(t *testing.T, dir string) int64 {
	t.Helper()
	seen := map[uint64]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		if !seen[st.Ino] {
			seen[st.Ino] = true
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// userFile writes a file the user owns in their home.
func userFile(t *testing.T, u *harness.User, name, data string) string {
	t.Helper()
	p := filepath.Join(u.Home, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	return p
}

// versionsInStore returns the VersionIds appv list shows.
func (e *env) versionsInStore(u *harness.User) map[string]client.PackageInfo {
	e.t.Helper()
	var pkgs []client.PackageInfo
	if err := json.Unmarshal([]byte(e.mustAppv(u, "list", "--json")), &pkgs); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]client.PackageInfo{}
	for _, p := range pkgs {
		out[p.VersionID] = p
	}
	return out
}

// waitGone waits until the store no longer holds version verID.
func (e *env) waitGone(verID string) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, ok := e.versionsInStore(nil)[verID]; !ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("version %s is still in the store: an old version nothing refers to must be removed", verID)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// mustSay runs appv and fails unless it exits 0 with out containing
// every want.
func (e *env) mustSay(u *harness.User, want []string, args ...string) string {
	e.t.Helper()
	out := e.mustAppv(u, args...)
	for _, w := range want {
		if !strings.Contains(out, w) {
			e.t.Fatalf("appv %s said %q, want %q in it", strings.Join(args, " "), out, w)
		}
	}
	return out
}

// TestRefreshUpgrade: a user registers a publishing server with a token,
// syncs and launches v1; an unchanged refresh is a 304; a refused token
// fails with what to do; the server publishes v2 and the next sync upgrades
// at once (nothing runs): the launch runs v2 with the user's settings kept,
// the store grew by about what changed, and v1 is removed.
func TestRefreshUpgrade(t *testing.T) {
	e := newEnv(t, 1)
	alice := e.users[0]
	e.mustAppv(nil, "client", "config", "set", "AutoLoad", "0") // what is fetched is what the test does
	pkgs := buildUpgradePackages(t, e.svc.Bin, t.TempDir())
	ps := newTestPublishingServer(t, "alice-secret")
	ps.publish(t, pkgs.pkgID, pkgs.ver1, pkgs.v1)

	token := userFile(t, alice, "corp.token", "alice-secret\n")
	e.mustSay(alice, []string{"corp: registered " + ps.URL + "/"}, "publishing-server", "add", "corp", ps.URL+"/", "--token-file", token)
	e.mustSay(alice, []string{"corp (" + ps.URL + "/): applied", "added", "E2eApp 1.0.0.0"}, "sync")
	e.mustSay(alice, []string{"version 1 launches=1"}, "launch", "e2eapp")
	e.mustSay(alice, []string{"unchanged"}, "sync")
	list := e.mustSay(alice, []string{"corp", alice.Name, "every 1h and at service start", "unchanged"}, "publishing-server", "list")
	if strings.Contains(list, "alice-secret") {
		t.Errorf("publishing-server list shows the token:\n%s", list)
	}

	// A refused token: exit 1, naming the server and what to do.
	bad := userFile(t, alice, "bad.token", "stale")
	e.mustAppv(alice, "publishing-server", "set", "corp", "--token-file", bad)
	ps.publish(t, pkgs.pkgID, pkgs.ver1, pkgs.v1) // same document; the 304 would hide the 401
	ps.mu.Lock()
	ps.token = "rotated"
	ps.mu.Unlock()
	code, _, errs := e.appvAs(alice, "", "sync")
	if code != 1 || !strings.Contains(errs, "corp") || !strings.Contains(errs, "token was refused") || !strings.Contains(errs, "appv publishing-server set corp --token-file") {
		t.Errorf("sync with a refused token: exit %d, %q; want 1 and what to do", code, errs)
	}
	ps.mu.Lock()
	ps.token = "alice-secret"
	ps.mu.Unlock()
	e.mustAppv(alice, "publishing-server", "set", "corp", "--token-file", token)

	// The whole of v1 is local, as after long use.
	e.mustAppv(nil, "mount", pkgs.ver1)
	store := filepath.Join(e.svc.State, "packages")
	before, sentBefore := storeUsage(t, store), ps.sent.Load()

	ps.publish(t, pkgs.pkgID, pkgs.ver2, pkgs.v2)
	e.mustSay(alice, []string{"upgraded", "E2eApp 1.0.0.0 -> 2.0.0.0"}, "sync")
	e.mustSay(alice, []string{"version 2 launches=2"}, "launch", "e2eapp")
	e.mustAppv(nil, "mount", pkgs.ver2)
	grew, fetched := storeUsage(t, store)-before, ps.sent.Load()-sentBefore
	t.Logf("upgrade: the store grew by %d bytes and %d were fetched; %d changed, %d unchanged", grew, fetched, pkgs.changed, pkgs.unchangedBytes)
	if fetched > pkgs.changed+1<<20 {
		t.Errorf("loading v2 fetched %d bytes; only about the %d that changed should be", fetched, pkgs.changed)
	}
	if grew > pkgs.changed+1<<20 || grew < pkgs.changed-256<<10 {
		t.Errorf("the store grew by %d bytes; want about the %d that changed", grew, pkgs.changed)
	}
	e.waitGone(pkgs.ver1)
	// The settings v1 wrote are where v2 finds them.
	settings := filepath.Join(alice.Home, ".local/share/appv/vfs", pkgs.pkgID, "XdgConfigHome/upper/e2eapp/settings.ini")
	if data, err := os.ReadFile(settings); err != nil || strings.Count(string(data), "launched") != 2 {
		t.Errorf("settings in the COW area: %q, %v; want both launches", data, err)
	}
	ev := e.mustAppv(nil, "events")
	for _, want := range []string{"publishing server added", "publishing refresh", "package upgraded", "old package version removed", "publishing refresh failed"} {
		if !strings.Contains(ev, want) {
			t.Errorf("events lack %q", want)
		}
	}

	// The registration survives a restart of the service, which refreshes
	// at its start: the server took the package away meanwhile.
	e.svc.Stop()
	ps.publishNothing(t)
	svc, err := harness.StartService(e.svc.Bin, filepath.Dir(e.svc.State))
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if code, _, _ := e.appvAs(alice, "", "launch", "e2eapp"); code == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refresh at the service's start did not unpublish what the server no longer lists")
		}
	}

	// Removing the server unpublishes what it published.
	ps.publish(t, pkgs.pkgID, pkgs.ver2, pkgs.v2)
	e.mustSay(alice, []string{"E2eApp 2.0.0.0"}, "sync")
	e.mustSay(alice, []string{"version 2"}, "launch", "e2eapp")
	e.mustAppv(alice, "publishing-server", "remove", "corp")
	if code, _, _ := e.appvAs(alice, "", "launch", "e2eapp"); code != 5 {
		t.Errorf("launch after the server was removed: exit %d, want 5", code)
	}
	if out := e.mustAppv(alice, "publishing-server", "list"); strings.Contains(out, "corp") {
		t.Errorf("the removed server is still listed:\n%s", out)
	}
}

// TestRefreshUpgradeWhileRunning: v2 is published while v1 runs. sync says
// pending; the running program keeps seeing v1's files; the store holds both
// versions, v2 taking about what changed; once the program exits, the next
// launch runs v2 and v1 is removed.
func TestRefreshUpgradeWhileRunning(t *testing.T) {
	e := newEnv(t, 1)
	alice := e.users[0]
	e.mustAppv(nil, "client", "config", "set", "AutoLoad", "0")
	pkgs := buildUpgradePackages(t, e.svc.Bin, t.TempDir())
	ps := newTestPublishingServer(t, "tok")
	ps.publish(t, pkgs.pkgID, pkgs.ver1, pkgs.v1)
	token := userFile(t, alice, "corp.token", "tok")
	e.mustAppv(alice, "publishing-server", "add", "corp", ps.URL+"/", "--token-file", token, "--refresh-interval", "0")
	e.mustAppv(alice, "sync")
	e.mustAppv(nil, "mount", pkgs.ver1)

	// /tmp is the host's in the environment (docs/venv.md), and a file made
	// there while the program runs is seen by it.
	sigDir, err := os.MkdirTemp("", "appv-signal-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sigDir) })
	if err := os.Chmod(sigDir, 0o755); err != nil {
		t.Fatal(err)
	}
	signal := filepath.Join(sigDir, "go-on")
	cmd := exec.Command(e.svc.Bin, "launch", "e2eapp", "--", "wait", signal)
	cmd.Env = append(e.svc.Env(), "HOME="+alice.Home, "USER="+alice.Name, "XDG_DATA_HOME=", "XDG_CACHE_HOME=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(alice.UID), Gid: uint32(alice.GID)}}
	cmd.Dir = alice.Home
	var out, errs harness.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = os.WriteFile(signal, nil, 0o644)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "version 1 launches=1"); {
		if time.Now().After(deadline) {
			t.Fatalf("the long-running launch did not start: %q %q", out.String(), errs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	store := filepath.Join(e.svc.State, "packages")
	before := storeUsage(t, store)
	ps.publish(t, pkgs.pkgID, pkgs.ver2, pkgs.v2)
	e.mustSay(alice, []string{"pending", "E2eApp 1.0.0.0 -> 2.0.0.0", "last process exits"}, "sync")
	inStore := e.versionsInStore(alice)
	if !inStore[pkgs.ver1].Published || inStore[pkgs.ver2].Published || !strings.Contains(inStore[pkgs.ver1].Pending, "2.0.0.0") {
		t.Errorf("while pending: v1 %+v, v2 %+v; want v1 published with the switch pending", inStore[pkgs.ver1], inStore[pkgs.ver2])
	}
	// Both versions are in the store; v2 takes about what changed.
	e.mustAppv(nil, "mount", pkgs.ver2)
	grew := storeUsage(t, store) - before
	t.Logf("with both versions in the store it grew by %d bytes; %d changed, %d unchanged", grew, pkgs.changed, pkgs.unchangedBytes)
	if grew > pkgs.changed+1<<20 || grew < pkgs.changed-256<<10 {
		t.Errorf("the store grew by %d bytes with v2 beside v1; want about the %d that changed, not a copy of the %d unchanged", grew, pkgs.changed, pkgs.unchangedBytes)
	}
	if err := os.WriteFile(signal, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("the long-running program: %v, %q", waitErr, errs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the long-running program did not end: %q %q", out.String(), errs.String())
	}
	if !strings.Contains(out.String(), "still running: version 1") {
		t.Errorf("the running program saw %q after the sync; it must keep v1's files", out.String())
	}
	e.mustSay(alice, []string{"version 2 launches=2"}, "launch", "e2eapp")
	e.waitGone(pkgs.ver1)
	if v2 := e.versionsInStore(alice)[pkgs.ver2]; !v2.Published || v2.Pending != "" {
		t.Errorf("after the switch: %+v", v2)
	}
}

// TestStandaloneUpgrade is App-V's MSI streaming mode: add from a local
// package, streaming from a URL, published to every user; the same command
// with v2 upgrades; a URL holding another package is refused.
func TestStandaloneUpgrade(t *testing.T) {
	e := newEnv(t, 1)
	alice := e.users[0]
	bin := t.TempDir()
	e.mustAppv(nil, "client", "config", "set", "GlobalBinDir", bin) // not the host's /usr/local/bin
	e.mustAppv(nil, "client", "config", "set", "AutoLoad", "0")
	content := t.TempDir()
	_ = os.Chmod(content, 0o755)
	pkgs := buildUpgradePackages(t, e.svc.Bin, content)
	srv := newContentServer(t, content)
	t.Cleanup(func() { _, _, _ = e.appvAs(nil, "", "unpublish", "--global", "E2eApp") })

	e.mustSay(nil, []string{"E2eApp 1.0.0.0", "published to every user"}, "add", pkgs.v1, "--override-url", srv.URL+"/v1.appv")
	e.mustSay(alice, []string{"version 1 launches=1"}, "launch", "e2eapp")
	if _, err := os.Stat(filepath.Join(bin, "e2eapp")); err != nil {
		t.Errorf("no global launcher: %v", err)
	}
	code, _, errs := e.appvAs(nil, "", "add", pkgs.v2, "--override-url", srv.URL+"/v1.appv")
	if code != 3 || !strings.Contains(errs, pkgs.ver1) || !strings.Contains(errs, pkgs.ver2) {
		t.Errorf("add with a URL holding another version: exit %d, %q; want 3 naming both VersionIds", code, errs)
	}
	e.mustAppv(nil, "mount", pkgs.ver1)
	sent := srv.Sent()
	e.mustSay(nil, []string{"E2eApp 2.0.0.0", "upgraded from 1.0.0.0", "sharing"}, "add", pkgs.v2, "--override-url", srv.URL+"/v2.appv")
	e.mustSay(alice, []string{"version 2 launches=2"}, "launch", "e2eapp")
	e.mustAppv(nil, "mount", pkgs.ver2)
	if fetched := srv.Sent() - sent; fetched > pkgs.changed+1<<20 {
		t.Errorf("the upgrade fetched %d bytes; only about the %d that changed should be", fetched, pkgs.changed)
	}
	e.waitGone(pkgs.ver1)
	if v2 := e.versionsInStore(alice)[pkgs.ver2]; !v2.Global || v2.Location != srv.URL+"/v2.appv" {
		t.Errorf("v2 after the upgrade: %+v; want it published globally, streamed from the override URL", v2)
	}

	// A plain add of another version shares with the one here and
	// publishes nothing.
	e.mustSay(nil, []string{"E2eApp 1.0.0.0", "added (sharing unchanged files with version " + pkgs.ver2 + ")"}, "add", pkgs.v1)
	in := e.versionsInStore(alice)
	if in[pkgs.ver1].Published || !in[pkgs.ver2].Global {
		t.Errorf("a plain add changed publications: v1 %+v, v2 %+v", in[pkgs.ver1], in[pkgs.ver2])
	}
	e.mustSay(alice, []string{"version 2"}, "launch", "e2eapp")
}
