package appvpkg

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// conformanceDir is the AppX corpus shipped beside the repository.
const conformanceDir = "../../../shared/conformance/appx"

type expectation struct {
	file, verdict, class, note string
}

func loadExpectations(t testing.TB) []expectation {
	t.Helper()
	f, err := os.Open(filepath.Join(conformanceDir, "EXPECTATIONS.tsv"))
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("conformance corpus missing in CI (%v): ../shared must be beside the repository", err)
		}
		t.Skipf("conformance corpus not found beside the repository (%v)", err)
	}
	defer f.Close()
	var out []expectation
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 4 {
			t.Fatalf("bad EXPECTATIONS.tsv line %q", line)
		}
		out = append(out, expectation{cols[0], cols[1], cols[2], cols[3]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("EXPECTATIONS.tsv lists no packages")
	}
	return out
}

// TestConformance reaches the stated verdict for every package of the
// corpus, and for every ok package checks that each file's verified content is
// byte-identical to what archive/zip extracts.
func TestConformance(t *testing.T) {
	for _, ex := range loadExpectations(t) {
		t.Run(ex.file, func(t *testing.T) {
			path := filepath.Join(conformanceDir, ex.file)
			err := openAndVerify(path)
			switch ex.verdict {
			case "ok":
				if err != nil {
					t.Fatalf("want ok, got %v", err)
				}
				compareWithArchiveZip(t, path)
			case "reject":
				if err == nil {
					t.Fatalf("want reject (%s: %s), package was accepted", ex.class, ex.note)
				}
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("rejection is not a format error: %v", err)
				}
				var fe *FormatError
				if !errors.As(err, &fe) || fe.Part == "" || fe.Rule == "" {
					t.Fatalf("rejection does not name a part and a rule: %v", err)
				}
				t.Logf("rejected as expected (%s): %v", ex.class, err)
			default:
				t.Fatalf("unknown verdict %q", ex.verdict)
			}
		})
	}
}

func openAndVerify(path string) error {
	p, err := OpenFile(path)
	if err != nil {
		return err
	}
	defer p.Close()
	return p.Verify(context.Background(), VerifyOptions{})
}

func compareWithArchiveZip(t *testing.T, path string) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("archive/zip cannot open an ok package: %v", err)
	}
	defer zr.Close()
	p, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	out := t.TempDir()
	if err := p.Extract(context.Background(), out, ExtractOptions{}); err != nil {
		t.Fatalf("extract: %v", err)
	}
	n := 0
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		want, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("archive/zip reading %s: %v", zf.Name, err)
		}
		name, err := decodeZipName(zf.Name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(name)))
		if err != nil {
			t.Fatalf("extracted tree lacks %s: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: extracted %d bytes differ from archive/zip's %d", name, len(got), len(want))
		}
		n++
	}
	if n != len(p.Files())+len(p.FootprintNames()) {
		t.Fatalf("archive/zip saw %d entries, we have %d files + %d footprint parts", n, len(p.Files()), len(p.FootprintNames()))
	}
}
