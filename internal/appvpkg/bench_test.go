package appvpkg

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"
)

// BenchmarkReadBlock measures a verified random block read (fetch, inflate,
// hash) from a package of text-like data; b.SetBytes makes -bench report
// uncompressed MB/s per core. APPV_BENCH_PACKAGE names another package to
// read instead (bench/README.md).
func BenchmarkReadBlock(b *testing.B) {
	b.Run("all", func(b *testing.B) { benchReadBlock(b, false) })
	b.Run("full64k", func(b *testing.B) { benchReadBlock(b, true) })
}

func benchReadBlock(b *testing.B, fullOnly bool) {
	var p *Package
	if name := os.Getenv("APPV_BENCH_PACKAGE"); name != "" {
		var err error
		if p, err = OpenFile(name); err != nil {
			b.Fatal(err)
		}
	} else {
		data := createPackage(b, makeTree(b), 0)
		var err error
		if p, err = Open(bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
	type ref struct {
		f *File
		i int
	}
	var refs []ref
	for _, f := range p.Files() {
		for i := 0; i < f.Blocks(); i++ {
			if !fullOnly || f.BlockLen(i) == BlockSize {
				refs = append(refs, ref{f, i})
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 1))
	var buf []byte
	var n int64
	b.ResetTimer()
	for b.Loop() {
		r := refs[rng.IntN(len(refs))]
		var err error
		if buf, err = p.ReadBlock(r.f, r.i, buf[:0]); err != nil {
			b.Fatal(err)
		}
		n += int64(len(buf))
	}
	b.SetBytes(n / int64(max(b.N, 1)))
}
