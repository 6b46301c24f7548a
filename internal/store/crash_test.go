package store_test

import (
	"bytes"
	"context"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/store"
	"github.com/appv/appv/internal/store/storetest"
)

// The crash test re-executes the test binary (as os/exec's tests do): the
// child opens the store and mounts the version; the parent kills it with
// SIGKILL part-way and checks what a restart finds.
const (
	crashDirEnv = "APPV_STORE_CRASH_DIR"
	crashURLEnv = "APPV_STORE_CRASH_URL"
)

func TestCrashDuringMount(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(t, dir, os.Getenv(crashURLEnv))
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	// 48 MiB in one stored file: 768 blocks, 12 Mount batches of 64, each
	// served slowly, so the child is killed with some batches durable.
	tree := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 8))
	storetest.WriteFile(t, filepath.Join(tree, "big.bin"), storetest.Random(rng, 48<<20), 0o644)
	storetest.WriteFile(t, filepath.Join(tree, "bin/app"), storetest.Text(rng, 3*appvpkg.BlockSize), 0o755)
	storetest.SetTimes(t, tree)
	data := storetest.Package(t, tree, storetest.VersionID)
	pkg, err := appvpkg.Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	srv := storetest.NewServer(t, data)
	dir := t.TempDir()
	fx := &fixture{tree: tree, data: data, srv: srv, dir: dir, pkg: pkg}

	s := fx.open(t, store.Options{})
	v := fx.add(t, s)
	initial := int(v.Stats().BlocksPresent)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	srv.Delay(150 * time.Millisecond)
	var out bytes.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDuringMount$", "-test.v")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashURLEnv+"="+srv.URL())
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	bitmapPath := filepath.Join(v.Dir(), "present")
	deadline := time.Now().Add(30 * time.Second)
	killedAt := -1
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(bitmapPath)
		if err == nil {
			if n := countBits(b); n > initial+200 {
				killedAt = n
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	_ = cmd.Process.Kill() // SIGKILL
	_ = cmd.Wait()
	if killedAt < 0 {
		t.Fatalf("the child set no bit in 30s; its output:\n%s", out.String())
	}
	t.Logf("killed the child with %d bits set (%d after Add)", killedAt, initial)
	srv.Delay(0)
	// Let the server finish (and fail) the dead child's requests, so that
	// what it sends next is ours alone.
	for last := int64(-1); last != srv.Bytes(); {
		last = srv.Bytes()
		time.Sleep(300 * time.Millisecond)
	}

	s2 := fx.open(t, store.Options{})
	v2, err := s2.Version(storetest.PackageID, storetest.VersionID)
	if err != nil {
		t.Fatal(err)
	}
	st := v2.Stats()
	if int(st.BlocksPresent) <= initial || st.BlocksPresent >= st.BlocksTotal {
		t.Fatalf("after the crash %d of %d blocks present (%d after Add): kill came too early or too late", st.BlocksPresent, st.BlocksTotal, initial)
	}
	// Every bit set is a verified block.
	if bad, err := v2.Verify(context.Background()); bad != 0 || err != nil {
		t.Fatalf("Verify after the crash = %d, %v", bad, err)
	}
	// Mount resumes: it fetches exactly the missing blocks.
	var missingRaw int64
	for _, f := range pkg.Files() {
		for i := 0; i < f.Blocks(); i++ {
			if !v2.BlockPresent(f.Name, i) {
				_, n := f.BlockRange(i)
				missingRaw += n
			}
		}
	}
	before := srv.Bytes()
	if err := v2.Mount(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got := srv.Bytes() - before; got != missingRaw {
		t.Errorf("resumed Mount fetched %d bytes, want %d (the missing blocks)", got, missingRaw)
	}
	t.Logf("resumed Mount fetched %d of %d package bytes", missingRaw, len(data))
	if bad, err := v2.Verify(context.Background()); bad != 0 || err != nil {
		t.Fatalf("Verify after Mount = %d, %v", bad, err)
	}
	for _, f := range pkg.Files() {
		p, ok := v2.LocalPath(f.Name)
		if !ok {
			t.Fatalf("%s not local", f.Name)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, fx.want(t, f.Name)) {
			t.Errorf("%s differs", f.Name)
		}
	}
}

// crashChild mounts the version in dir until it is killed.
func crashChild(t *testing.T, dir, url string) {
	s, err := store.Open(context.Background(), dir, store.Options{Open: storetest.OpenHTTPSource})
	if err != nil {
		fmt.Println("child:", err)
		os.Exit(2)
	}
	v, err := s.Version(storetest.PackageID, storetest.VersionID)
	if err != nil {
		fmt.Println("child:", err)
		os.Exit(2)
	}
	if v.Location() != url {
		fmt.Println("child: location", v.Location(), "want", url)
		os.Exit(2)
	}
	err = v.Mount(context.Background(), func(done, total int64) { fmt.Println("child: progress", done, total) })
	fmt.Println("child: Mount returned", err)
	os.Exit(3) // the parent should have killed us first
}

func countBits(b []byte) int {
	n := 0
	for _, c := range b {
		n += bits.OnesCount8(c)
	}
	return n
}
