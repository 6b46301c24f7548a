package appvpkg

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// corpusSeeds returns the bytes of the smaller corpus packages.
func corpusSeeds(f *testing.F, maxSize int64) [][]byte {
	var out [][]byte
	_ = filepath.Walk(conformanceDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() || info.Size() > maxSize {
			return nil
		}
		if ext := filepath.Ext(p); ext != ".appx" && ext != ".msix" {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil {
			out = append(out, data)
		}
		return nil
	})
	return out
}

// corpusParts returns one named part from each corpus package that has it.
func corpusParts(f *testing.F, part string) [][]byte {
	var out [][]byte
	for _, pkg := range corpusSeeds(f, 1<<20) {
		zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
		if err != nil {
			continue
		}
		for _, zf := range zr.File {
			if zf.Name != part {
				continue
			}
			rc, err := zf.Open()
			if err != nil {
				continue
			}
			if data, err := io.ReadAll(io.LimitReader(rc, 1<<20)); err == nil {
				out = append(out, data)
			}
			rc.Close()
		}
	}
	return out
}

// FuzzOpen feeds arbitrary bytes to the package reader. Whatever it accepts
// must verify or fail cleanly, and every block it returns must be one that
// hashed correctly (ReadBlock never returns unverified bytes).
func FuzzOpen(f *testing.F) {
	for _, s := range corpusSeeds(f, 64<<10) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		_ = p.Verify(context.Background(), VerifyOptions{Workers: 1})
		for _, file := range p.Files() {
			for i := 0; i < file.Blocks() && i < 4; i++ {
				blk, err := p.ReadBlock(file, i, nil)
				if err == nil && int64(len(blk)) != file.BlockLen(i) {
					t.Fatalf("%s block %d: %d bytes, want %d", file.Name, i, len(blk), file.BlockLen(i))
				}
			}
		}
	})
}

func FuzzParseBlockMap(f *testing.F) {
	for _, s := range corpusParts(f, BlockMapPart) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		bm, err := ParseBlockMap(data)
		if err != nil {
			return
		}
		// What parses must survive our own writing of it.
		again, err := ParseBlockMap(bm.Marshal())
		if err != nil {
			t.Fatalf("re-parse of marshalled block map: %v", err)
		}
		if len(again.Files) != len(bm.Files) {
			t.Fatalf("round trip changed the file count: %d -> %d", len(bm.Files), len(again.Files))
		}
		for i := range bm.Files {
			a, b := bm.Files[i], again.Files[i]
			if a.Name != b.Name || a.Size != b.Size || a.LfhSize != b.LfhSize || len(a.Blocks) != len(b.Blocks) {
				t.Fatalf("round trip changed file %d: %+v -> %+v", i, a, b)
			}
		}
	})
}

func FuzzParseContentTypes(f *testing.F) {
	for _, s := range corpusParts(f, ContentTypesPart) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ct, err := ParseContentTypes(data)
		if err != nil {
			return
		}
		_, _ = ct.TypeOf("Root/a.txt")
	})
}
