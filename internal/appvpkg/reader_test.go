package appvpkg

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// httpReaderAt reads a URL with Range requests: the package reader works
// over it as over a local file.
type httpReaderAt struct {
	url      string
	requests atomic.Int64
	bytes    atomic.Int64
}

func (h *httpReaderAt) ReadAt(p []byte, off int64) (int, error) {
	req, err := http.NewRequest(http.MethodGet, h.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return 0, fmt.Errorf("range request: %s", resp.Status)
	}
	h.requests.Add(1)
	n, err := io.ReadFull(resp.Body, p)
	h.bytes.Add(int64(n))
	return n, err
}

// TestOpenOverHTTP opens a package through HTTP Range requests and reads one
// block: only the end records, central directory, block map, content types
// and that block's bytes cross the network.
func TestOpenOverHTTP(t *testing.T) {
	data := createPackage(t, makeTree(t), 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "p.appv", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	ra := &httpReaderAt{url: srv.URL}
	p, err := Open(ra, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	openBytes := ra.bytes.Load()
	f, err := p.File("Root/share/many blocks.txt")
	if err != nil {
		t.Fatal(err)
	}
	before := ra.bytes.Load()
	blk, err := p.ReadBlock(f, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(blk) != BlockSize {
		t.Fatalf("block of %d bytes", len(blk))
	}
	_, n := f.BlockRange(3)
	if got := ra.bytes.Load() - before; got != n {
		t.Errorf("reading one block fetched %d bytes, want exactly its range of %d", got, n)
	}
	if openBytes >= int64(len(data))/2 {
		t.Errorf("opening fetched %d of %d bytes; it should read only the metadata", openBytes, len(data))
	}
	t.Logf("open: %d requests, %d of %d bytes; one block: %d bytes", ra.requests.Load()-1, openBytes, len(data), n)
}

// TestZip64 writes a package whose entries start beyond 4 GiB (the
// writer's offset starts there, into a sparse file), so offsets need Zip64
// records, and reads it back with our reader and with archive/zip.
func TestZip64(t *testing.T) {
	const start = 5 << 30
	file := filepath.Join(t.TempDir(), "zip64.appv")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	src := makeTree(t)
	cw := &countWriter{w: f}
	entries, _, err := walkTree(src, "/opt/hello", false)
	if err != nil {
		t.Fatal(err)
	}
	pw := &packageWriter{zw: newZipWriter(cw), ct: newContentTypeBuilder(), bm: &BlockMap{HashMethod: HashSHA256}, level: 1, workers: 2}
	pw.zw.off = start
	if err := pw.writeTree(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	enc := newBlockEncoder(1)
	pw.ct.add(BlockMapPart)
	if err := pw.writeFootprint(BlockMapPart, pw.bm.Marshal(), enc); err != nil {
		t.Fatal(err)
	}
	if err := pw.writeFootprint(ContentTypesPart, pw.ct.marshal(), enc); err != nil {
		t.Fatal(err)
	}
	if err := pw.zw.close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	p, err := OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, e := range p.dir.Entries {
		if e.HeaderOffset < start {
			t.Fatalf("%s at offset %d: the test did not exercise Zip64", e.Name, e.HeaderOffset)
		}
	}
	if err := p.Verify(context.Background(), VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(file)
	if err != nil {
		t.Fatalf("archive/zip rejects our Zip64 records: %v", err)
	}
	defer zr.Close()
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("archive/zip reading %s: %v", zf.Name, err)
		}
		rc.Close()
	}
}

// TestMaliciousNames checks that part names that are absolute, contain
// "..", NUL or control characters, or are otherwise unsafe are rejected with
// ErrUnsafePath, and safe odd names pass.
func TestMaliciousNames(t *testing.T) {
	tests := []struct {
		zipName string
		ok      bool
	}{
		{"Root/bin/app", true},
		{"Root/Notepad%2B%2B/a%20b.txt", true},
		{"Root/%E6%97%A5%E6%9C%AC", true},
		{"/etc/passwd", false},
		{"Root/../../etc/passwd", false},
		{"Root/%2E%2E/x", false},
		{"Root/a/./b", false},
		{"Root//b", false},
		{"Root/a%00b", false},
		{"Root/a%0Ab", false},
		{`Root\..\x`, false},
		{"Root/a%5Cb", false},
		{"C:/x", false},
		{"Root/%zz", false},
		{"Root/VFS/[{Usr}]/x", false},
		{"Root/%FF%FE", false},
	}
	for _, tc := range tests {
		t.Run(tc.zipName, func(t *testing.T) {
			_, err := decodeZipName(tc.zipName)
			if tc.ok && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("got %v, want ErrUnsafePath", err)
			}
		})
	}
	if _, err := SafeJoin("/tmp/x", "Root/../../etc"); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("SafeJoin let a path escape: %v", err)
	}
}

// TestZipBombRefused checks that a block-map Size that promises more than a
// block can hold is refused before anything is inflated.
func TestZipBombRefused(t *testing.T) {
	bm := `<?xml version="1.0" encoding="UTF-8"?>
<BlockMap xmlns="http://schemas.microsoft.com/appx/2010/blockmap" HashMethod="http://www.w3.org/2001/04/xmlenc#sha256">
<File Name="a" Size="65536" LfhSize="31"><Block Hash="47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" Size="9999999"/></File>
</BlockMap>`
	_, err := ParseBlockMap([]byte(bm))
	if err == nil || !strings.Contains(err.Error(), "bad Size") {
		t.Fatalf("got %v, want a bad Size error", err)
	}
	deep := strings.Repeat("<a>", MaxXMLDepth+1) + strings.Repeat("</a>", MaxXMLDepth+1)
	if _, err := ParseBlockMap([]byte(deep)); err == nil || !strings.Contains(err.Error(), "deeper") {
		t.Fatalf("deep XML: %v", err)
	}
	dtd := `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x/>`
	if _, err := ParseContentTypes([]byte(dtd)); err == nil || !strings.Contains(err.Error(), "DOCTYPE") {
		t.Fatalf("DOCTYPE: %v", err)
	}
}
