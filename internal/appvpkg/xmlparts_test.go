package appvpkg

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/appv/appv/internal/golden"
)

// updateXMLGolden rewrites the golden files of the XML part tests.
var updateXMLGolden = flag.Bool("update-xml", false, "rewrite testdata/xml/golden files")

// readXMLFixture reads testdata/xml/name.
func readXMLFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "xml", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// xmlFixtures returns the names of the fixtures whose name starts with prefix.
func xmlFixtures(t testing.TB, prefix string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join("testdata", "xml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasPrefix(e.Name(), prefix) && strings.HasSuffix(e.Name(), ".xml") {
			out = append(out, e.Name())
		}
	}
	if len(out) == 0 {
		t.Fatalf("no fixtures %s*.xml", prefix)
	}
	return out
}

// checkGolden compares got with testdata/xml/golden/name, or rewrites it
// with -update-xml.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", "xml", "golden", name), got, *updateXMLGolden, "-update-xml")
}

// wantFormatError checks that err is a *FormatError for part whose rule
// contains ruleSub, and that it wraps ErrFormat.
func wantFormatError(t *testing.T, err error, part, ruleSub string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s: ...%s...", part, ruleSub)
	}
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FormatError", err, err)
	}
	if fe.Part != part {
		t.Errorf("error part = %q, want %q (%v)", fe.Part, part, err)
	}
	if !strings.Contains(fe.Rule, ruleSub) {
		t.Errorf("error rule = %q, want it to contain %q", fe.Rule, ruleSub)
	}
	if !errors.Is(err, ErrFormat) {
		t.Errorf("error %v does not wrap ErrFormat", err)
	}
	if !strings.HasPrefix(err.Error(), "appvpkg: "+part+": ") {
		t.Errorf("error %q does not start with %q", err, "appvpkg: "+part+": ")
	}
}

// canonicalXML renders data as a list of namespace-resolved tokens: element
// names and attributes as {URI}local (declarations left out, attributes
// sorted), text, comments and processing instructions. Two documents with
// the same canonical form are namespace-equivalent, whatever prefixes they
// use. With skipSpace, whitespace-only text is left out.
func canonicalXML(t testing.TB, data []byte, skipSpace bool) string {
	t.Helper()
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	d := xml.NewDecoder(bytes.NewReader(data))
	var b strings.Builder
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("canonicalXML: %v\n%s", err, data)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			var attrs []string
			for _, a := range tok.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				attrs = append(attrs, fmt.Sprintf("{%s}%s=%q", a.Name.Space, a.Name.Local, a.Value))
			}
			slices.Sort(attrs)
			fmt.Fprintf(&b, "<{%s}%s %s>", tok.Name.Space, tok.Name.Local, strings.Join(attrs, " "))
		case xml.EndElement:
			fmt.Fprintf(&b, "</{%s}%s>", tok.Name.Space, tok.Name.Local)
		case xml.CharData:
			if skipSpace && len(bytes.TrimSpace(tok)) == 0 {
				continue
			}
			fmt.Fprintf(&b, "%q", tok)
		case xml.Comment:
			fmt.Fprintf(&b, "<!--%q-->", tok)
		case xml.ProcInst:
			if tok.Target == "xml" {
				continue
			}
			fmt.Fprintf(&b, "<?%s %q?>", tok.Target, tok.Inst)
		}
	}
	return b.String()
}
