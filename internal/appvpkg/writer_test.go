package appvpkg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// makeTree builds a tree that exercises what a package must carry: contents,
// modes, symlinks, empty directories, 0-byte files, files of many blocks
// (compressible and not), and names with spaces, "+", "%" and non-ASCII.
func makeTree(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	write := func(name string, data []byte, mode fs.FileMode) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	text := func(n int) []byte {
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString("the quick brown fox jumps over the lazy dog ")
			b.WriteString(strings.Repeat("x", rng.IntN(20)))
			b.WriteByte('\n')
		}
		return b.Bytes()[:n]
	}
	write("bin/hello", append([]byte("#!/bin/sh\necho hello\n"), text(1000)...), 0o755)
	write("bin/setuid-tool", text(300), 0o4755)
	write("share/empty-file", nil, 0o644)
	write("share/exact-block", text(BlockSize), 0o644)
	write("share/many blocks.txt", text(5*BlockSize+123), 0o640)
	write("share/random.bin", random(3*BlockSize+7), 0o600)
	write("share/big-mixed", append(text(3*BlockSize), random(2*BlockSize)...), 0o644)
	write("share/plus+and%percent [x].txt", text(77), 0o644)
	write("share/ünïcødé/日本語.txt", text(500), 0o644)
	write(".hidden/.config", text(10), 0o644)
	write("VFS/XdgConfigHome/hello/settings.ini", []byte("[main]\ncolor=blue\n"), 0o644)
	for _, d := range []string{"var/empty-dir", "share/nested/empty"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("hello", filepath.Join(dir, "bin/hello-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../share/many blocks.txt", filepath.Join(dir, "bin/doc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/opt/hello/bin/hello", filepath.Join(dir, "bin/abs-inside")); err != nil {
		t.Fatal(err)
	}
	// A fixed mtime everywhere, so two trees built apart compare equal too.
	mt := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink == 0 {
			_ = os.Chtimes(p, mt, mt)
		}
		return err
	})
	return dir
}

func testManifest() *Manifest {
	return NewManifest(Identity{
		Name: "Hello", Version: "1.0.0.0", Publisher: "CN=appv test",
		PackageID: "d3c1e0a4-6e5f-4d2a-9a43-3f3b8f6c1a01",
		VersionID: "8a1f2b3c-4d5e-4f60-8172-93a4b5c6d7e8",
	})
}

func createPackage(t testing.TB, dir string, level int) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := Create(context.Background(), &buf, CreateOptions{
		Dir: dir, PackageRoot: "/opt/hello", Manifest: testManifest(), Level: level,
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	src := makeTree(t)
	data := createPackage(t, src, 0)
	p, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(context.Background(), VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := p.Extract(context.Background(), out, ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, src, filepath.Join(out, RootDir))
	for _, part := range []string{ManifestPart, StreamMapPart, FSMetadataPart, PackageHistoryPart, BlockMapPart, ContentTypesPart} {
		if _, err := os.Stat(filepath.Join(out, part)); err != nil {
			t.Errorf("extracted package lacks %s: %v", part, err)
		}
	}
	// Both kinds of file occur: deflated text, stored random data.
	for name, deflated := range map[string]bool{"Root/share/many blocks.txt": true, "Root/share/random.bin": false} {
		f, err := p.File(name)
		if err != nil {
			t.Fatal(err)
		}
		if f.Deflated != deflated {
			t.Errorf("%s: deflated=%v, want %v", name, f.Deflated, deflated)
		}
	}
}

// compareTrees checks that got holds exactly what want holds: the same
// names, types, contents, permission bits, symlink targets and file times.
func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	type node struct {
		mode   fs.FileMode
		sum    [32]byte
		target string
		mtime  time.Time
	}
	scan := func(root string) map[string]node {
		m := map[string]node{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if rel == "." {
				return nil
			}
			info, err := os.Lstat(p)
			if err != nil {
				return err
			}
			n := node{mode: info.Mode()}
			switch {
			case info.Mode().IsRegular():
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				n.sum = sha256.Sum256(data)
				n.mtime = info.ModTime()
			case info.Mode()&fs.ModeSymlink != 0:
				n.target, _ = os.Readlink(p)
				n.mode = fs.ModeSymlink // link permissions mean nothing on Linux
			default:
				n.mtime = info.ModTime()
			}
			m[rel] = n
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	w, g := scan(want), scan(got)
	for name, wn := range w {
		gn, ok := g[name]
		if !ok {
			t.Errorf("%s: missing after the round trip", name)
			continue
		}
		if wn.mode != gn.mode {
			t.Errorf("%s: mode %v, want %v", name, gn.mode, wn.mode)
		}
		if wn.sum != gn.sum {
			t.Errorf("%s: content differs", name)
		}
		if wn.target != gn.target {
			t.Errorf("%s: symlink target %q, want %q", name, gn.target, wn.target)
		}
		if !wn.mtime.Equal(gn.mtime) {
			t.Errorf("%s: mtime %v, want %v", name, gn.mtime, wn.mtime)
		}
	}
	for name := range g {
		if _, ok := w[name]; !ok {
			t.Errorf("%s: appeared in the round trip", name)
		}
	}
}

func TestDeterministic(t *testing.T) {
	src := makeTree(t)
	a := createPackage(t, src, 0)
	b := createPackage(t, src, 0)
	if !bytes.Equal(a, b) {
		t.Fatal("the same tree gave different packages")
	}
	// And independent of the number of workers.
	var c bytes.Buffer
	if _, err := Create(context.Background(), &c, CreateOptions{
		Dir: src, PackageRoot: "/opt/hello", Manifest: testManifest(), Workers: 1,
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, c.Bytes()) {
		t.Fatal("one worker and many gave different packages")
	}
}

// TestUnzipAccepts runs Info-ZIP's unzip -t on a package: plain ZIP tools
// must read what we write.
func TestUnzipAccepts(t *testing.T) {
	unzip, err := exec.LookPath("unzip")
	if err != nil {
		t.Skip("unzip is not installed (apt-get install unzip)")
	}
	data := createPackage(t, makeTree(t), 0)
	file := filepath.Join(t.TempDir(), "hello.appv")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(unzip, "-t", file).CombinedOutput()
	if err != nil {
		t.Fatalf("unzip -t rejected the package: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "No errors detected") {
		t.Fatalf("unzip -t did not report success:\n%s", out)
	}
}

func TestCreateRejects(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"symlink escaping the root", func(t *testing.T, dir string) {
			if err := os.Symlink("../../etc/passwd", filepath.Join(dir, "evil")); err != nil {
				t.Fatal(err)
			}
		}, "leads outside the package"},
		{"absolute symlink to the host", func(t *testing.T, dir string) {
			if err := os.Symlink("/etc/passwd", filepath.Join(dir, "evil")); err != nil {
				t.Fatal(err)
			}
		}, "leads outside the package"},
		{"unknown VFS folder", func(t *testing.T, dir string) {
			if err := os.MkdirAll(filepath.Join(dir, "VFS", "Nowhere"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "not one"},
		{"named pipe", func(t *testing.T, dir string) {
			if err := mkfifo(filepath.Join(dir, "pipe")); err != nil {
				t.Skip("mkfifo:", err)
			}
		}, "named pipe"},
		{"backslash in a name", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, `a\b`), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, `contains "\"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			var buf bytes.Buffer
			_, err := Create(context.Background(), &buf, CreateOptions{Dir: dir, PackageRoot: "/opt/hello", Manifest: testManifest()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestCorruptBlockNeverReturned flips one byte inside a block and checks that
// ReadBlock returns a hash error and no data, and that Verify names the file.
func TestCorruptBlockNeverReturned(t *testing.T) {
	data := createPackage(t, makeTree(t), 0)
	p, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Root/share/many blocks.txt", "Root/share/random.bin"} {
		t.Run(name, func(t *testing.T) {
			f, err := p.File(name)
			if err != nil {
				t.Fatal(err)
			}
			off, n := f.BlockRange(1)
			bad := bytes.Clone(data)
			bad[off+n/2] ^= 0x55
			q, err := Open(bytes.NewReader(bad), int64(len(bad)))
			if err != nil {
				t.Fatal(err)
			}
			qf, _ := q.File(name)
			got, err := q.ReadBlock(qf, 1, nil)
			if !errors.Is(err, ErrHash) || len(got) != 0 {
				t.Fatalf("ReadBlock of a corrupt block: %d bytes, err %v; want none and ErrHash", len(got), err)
			}
			if _, err := q.ReadBlock(qf, 0, nil); err != nil {
				t.Fatalf("the block before the corrupt one must still read: %v", err)
			}
			err = q.Verify(context.Background(), VerifyOptions{})
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Part != name {
				t.Fatalf("Verify: %v; want a FormatError naming %s", err, name)
			}
			// Extraction leaves no file under the damaged file's name.
			out := t.TempDir()
			if err := q.Extract(context.Background(), out, ExtractOptions{}); err == nil {
				t.Fatal("Extract of a corrupt package succeeded")
			}
			if _, err := os.Stat(filepath.Join(out, filepath.FromSlash(name))); !os.IsNotExist(err) {
				t.Fatalf("a damaged file was left under its name: %v", err)
			}
		})
	}
}

func mkfifo(p string) error { return syscall.Mkfifo(p, 0o644) }
