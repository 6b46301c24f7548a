package streamfs_test

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/appv/appv/internal/appvpkg"
	"github.com/appv/appv/internal/store"
	"github.com/appv/appv/internal/store/storetest"
	"github.com/appv/appv/internal/streamfs"
	"golang.org/x/sys/unix"
)

const benchSize = 1 << 30

// BenchmarkSequentialRead reads a fully local 1 GiB file sequentially (1
// MiB reads, warm page cache) natively from the store's sparse file,
// through the mount with FUSE passthrough, and through the mount with
// passthrough disabled (every read served by the daemon). bench/README.md
// reports the ratios.
func BenchmarkSequentialRead(b *testing.B) {
	needFUSE(b)
	dir := b.TempDir()
	tree := filepath.Join(dir, "tree")
	writeRandomFile(b, filepath.Join(tree, "big.bin"), benchSize)
	pkgPath := filepath.Join(dir, "big.appv")
	out, err := os.Create(pkgPath)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := appvpkg.Create(context.Background(), out, appvpkg.CreateOptions{
		Dir: tree, PackageRoot: "/opt/big", Manifest: storetest.Manifest(storetest.VersionID), Level: 1,
	}); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.RemoveAll(tree); err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(dir, "store"), store.Options{Open: storetest.OpenFileSource})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	v, err := st.Add(context.Background(), pkgPath)
	if err != nil {
		b.Fatal(err)
	}
	if err := v.Mount(context.Background(), nil); err != nil {
		b.Fatal(err)
	}
	const name = "Root/big.bin"
	native, ok := v.LocalPath(name)
	if !ok {
		b.Fatal("not local after Mount")
	}
	ptMnt, fuseMnt := filepath.Join(dir, "pt"), filepath.Join(dir, "fuse")
	for _, d := range []string{ptMnt, fuseMnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	pt := mount(b, ptMnt, st, streamfs.Options{})
	if !pt.Passthrough() {
		b.Log("kernel without FUSE passthrough: the passthrough case reads through the daemon")
	}
	mount(b, fuseMnt, st, streamfs.Options{DisablePassthrough: true})
	rel := filepath.Join(storetest.PackageID, storetest.VersionID, name)

	for _, cache := range []string{"warm", "cold"} {
		for _, bc := range []struct {
			name, path string
		}{
			{"native", native},
			{"passthrough", filepath.Join(ptMnt, rel)},
			{"fuse", filepath.Join(fuseMnt, rel)},
		} {
			b.Run(cache+"/"+bc.name, func(b *testing.B) {
				buf := make([]byte, 1<<20)
				if cache == "warm" {
					readFile(b, bc.path, buf)
				} else if err := dropCaches(); err != nil {
					b.Skipf("cannot drop the page cache: %v", err)
				}
				b.SetBytes(benchSize)
				b.ResetTimer()
				for b.Loop() {
					if cache == "cold" {
						b.StopTimer()
						if err := dropCaches(); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
					readFile(b, bc.path, buf)
				}
			})
		}
	}
	if s := pt.Stats(); s.PassthroughOpens == 0 || s.Reads != 0 {
		b.Logf("passthrough mount stats: %+v", s)
	}
}

// dropCaches empties the page cache (root only), so reads come from the
// disk.
func dropCaches() error {
	unix.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0)
}

func readFile(b *testing.B, p string, buf []byte) {
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var n int64
	for {
		k, err := f.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if n != benchSize {
		b.Fatalf("read %d bytes, want %d", n, benchSize)
	}
}

// writeRandomFile writes size incompressible bytes to p.
func writeRandomFile(b *testing.B, p string, size int) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 4<<20)
	for written := 0; written < size; written += len(buf) {
		_, _ = rng.Read(buf)
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}
