package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/client"
	"github.com/appv/appv/internal/harness"
)

// publishedApp adds the test package from a content server and publishes it
// to the first user; it returns the package file and the server.
func publishedApp(t *testing.T, e *env, bytesPerSecond int64) (string, *harness.ContentServer) {
	t.Helper()
	content := t.TempDir()
	_ = os.Chmod(content, 0o755)
	pkg, _ := buildPackage(t, e.svc.Bin, content)
	srv, err := harness.NewContentServer(content, bytesPerSecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e.mustAppv(nil, "add", srv.URL+"/"+filepath.Base(pkg))
	e.mustAppv(e.users[0], "publish", "E2eApp")
	return pkg, srv
}

// blockRange returns the bytes of the package that hold block i of file.
func blockRange(t *testing.T, pkg, file string, i int) (off, n int64) {
	t.Helper()
	p, err := appvpkg.OpenFile(pkg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	f, err := p.File(file)
	if err != nil {
		t.Fatal(err)
	}
	return f.BlockRange(i)
}

// flipByte changes one byte of a file in place, keeping its modification
// time, so the server serves it as the same package with a corrupt block.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptBlockNeverReachesTheApplication: a server that returns a
// corrupt block; the application gets an I/O error, never the bad bytes, and
// a later good fetch heals it.
func TestCorruptBlockNeverReachesTheApplication(t *testing.T) {
	e := newEnv(t, 1)
	alice := e.users[0]
	// No background loading: a background fetch of the corrupt block still
	// under way when the server is fixed would hand its error to the next
	// read too (one fetch per block), which is right but not what this test
	// is about.
	e.mustAppv(nil, "client", "config", "set", "AutoLoad", "0")
	pkg, _ := publishedApp(t, e, 0)
	// The program reads 64 KiB at 4 MiB into data.bin: block 64.
	off, n := blockRange(t, pkg, "Root/share/data.bin", 64)
	flipByte(t, pkg, off+n/2)
	code, out, errs := e.appvAs(alice, "", "launch", "e2eapp")
	if code != 12 || !strings.Contains(errs, "input/output error") {
		t.Fatalf("launch with a corrupt block: exit %d (want the program's 12), stdout %q, stderr %q", code, out, errs)
	}
	// The administrator can see what went wrong: the event log names the
	// file and the broken rule.
	ev := e.mustAppv(nil, "events", "--channel", "Operational")
	if !strings.Contains(ev, "Root/share/data.bin") || !strings.Contains(ev, "does not match its block-map hash") {
		t.Errorf("the event log does not report the corrupt block of data.bin:\n%s", ev)
	}
	flipByte(t, pkg, off+n/2) // the server is fixed
	code, out, errs = e.appvAs(alice, "", "launch", "e2eapp")
	if code != 0 || !strings.Contains(out, "hello from a streamed package") {
		t.Fatalf("launch after the server was fixed: exit %d, %q %q; a good fetch must heal the block", code, out, errs)
	}
}

// TestServerDiesMidStream: a server that breaks a response half way is
// retried transparently; a server that stays down fails the read with an
// I/O error (no wrong bytes), and a launch after it is back succeeds.
func TestServerDiesMidStream(t *testing.T) {
	e := newEnv(t, 1)
	alice := e.users[0]
	// No background loading: each launch must stream what it reads.
	e.mustAppv(nil, "client", "config", "set", "AutoLoad", "0")
	_, srv := publishedApp(t, e, 0)

	// Dies once, 20 KB into the next response, and comes back at once.
	srv.BreakAfter(20000)
	go func() {
		for !srv.Down() {
			time.Sleep(time.Millisecond)
		}
		srv.BreakAfter(-1)
		srv.SetDown(false)
	}()
	code, out, errs := e.appvAs(alice, "", "launch", "e2eapp")
	if code != 0 || !strings.Contains(out, "hello from a streamed package") {
		t.Fatalf("launch across a broken response: exit %d, %q %q; the source must retry", code, out, errs)
	}

	// Down for good while the program reads a block it has not read yet.
	srv.SetDown(true)
	code, out, errs = e.appvAs(alice, "", "launch", "e2eapp", "--", "0", "20")
	if code != 12 || !strings.Contains(errs, "input/output error") || strings.Contains(out, "hello") {
		t.Fatalf("launch with the server down: exit %d, %q %q; want the program's read to fail with EIO (12)", code, out, errs)
	}
	srv.SetDown(false)
	if code, out, errs := e.appvAs(alice, "", "launch", "e2eapp", "--", "0", "20"); code != 0 || !strings.Contains(out, "hello") {
		t.Fatalf("launch once the server is back: exit %d, %q %q", code, out, errs)
	}
	// Removing right after the last program exits works: an idle
	// environment does not count as in use.
	e.mustAppv(nil, "remove", "E2eApp")
}

// TestKilledDuringMount: kill -9 of the service during mount, then a
// restart: the store verifies clean and mount resumes, fetching only what is
// missing.
func TestKilledDuringMount(t *testing.T) {
	e := newEnv(t, 1)
	// 40 MiB of random data at 25 MB/s: mount takes about two seconds.
	pkg, srv := publishedApp(t, e, 25e6)
	st, err := os.Stat(pkg)
	if err != nil {
		t.Fatal(err)
	}
	size := st.Size()
	done := make(chan harness.Result, 1)
	go func() {
		r, _ := e.svc.Appv(context.Background(), nil, "", "mount", "E2eApp")
		done <- r
	}()
	deadline := time.Now().Add(30 * time.Second)
	for srv.Sent() < size/3 {
		if time.Now().After(deadline) {
			t.Fatalf("mount fetched only %d bytes in 30 s", srv.Sent())
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.svc.Kill()
	r := <-done
	if r.Code == 0 {
		t.Fatal("mount reported success although the service was killed")
	}
	sentAtKill := srv.Sent()
	t.Logf("killed the service after %d of %d bytes; mount said: %s", sentAtKill, size, strings.TrimSpace(r.Stderr))

	svc, err := harness.StartService(e.svc.Bin, filepath.Dir(e.svc.State))
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	t.Cleanup(svc.Stop)
	if !strings.Contains(svc.Logs(), "did not end cleanly") || !strings.Contains(svc.Logs(), "badBlocks=0") {
		t.Errorf("the restarted service did not verify the store clean:\n%s", svc.Logs())
	}
	e.mustAppv(nil, "mount", "E2eApp")
	resumed := srv.Sent() - sentAtKill
	t.Logf("the resumed mount fetched %d bytes; %d in all for a %d-byte package", resumed, srv.Sent(), size)
	if srv.Sent() > size+size/10 {
		t.Errorf("mount fetched %d bytes in all for a %d-byte package: it did not resume", srv.Sent(), size)
	}
	var pkgs []client.PackageInfo
	if err := json.Unmarshal([]byte(e.mustAppv(nil, "list", "--json")), &pkgs); err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 1 || pkgs[0].PercentLoaded != 100 {
		t.Fatalf("after the resumed mount: %+v", pkgs)
	}
	if code, out, _ := e.appvAs(e.users[0], "", "launch", "e2eapp"); code != 0 || !strings.Contains(out, "hello") {
		t.Fatalf("launch after the resumed mount: exit %d %q", code, out)
	}
}
