package appvpkg

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Fuzz targets for the XML parts. Each is seeded from testdata/xml and
// checks that no input panics, that every error is a *FormatError naming
// the part, and that whatever parses also marshals, re-parses to the same
// model, and marshals again to the same bytes.

// seedXMLParts adds the fixtures (and golden outputs) whose names start with
// prefix, and a few hand-made inputs.
func seedXMLParts(f *testing.F, prefix string, extra ...string) {
	for _, dir := range []string{filepath.Join("testdata", "xml"), filepath.Join("testdata", "xml", "golden")} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix) && strings.HasSuffix(e.Name(), ".xml") {
				data, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					f.Fatal(err)
				}
				f.Add(data)
			}
		}
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
}

// fuzzCheckErr fails unless err is a *FormatError for part.
func fuzzCheckErr(t *testing.T, err error, part string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Part != part {
		t.Fatalf("error is not a FormatError for %s: %v", part, err)
	}
}

func FuzzParseManifest(f *testing.F) {
	seedXMLParts(f, "manifest_",
		`<Package xmlns="http://schemas.microsoft.com/appx/2010/manifest"/>`,
		"\xEF\xBB\xBF<Package xmlns=\"http://schemas.microsoft.com/appx/2010/manifest\" xmlns:appv=\"http://schemas.microsoft.com/appv/2010/manifest\"><Identity Name=\"n\" Publisher=\"p\" Version=\"1.0.0.0\" appv:PackageId=\"3a1c4b9e-2f7d-4e8a-9c1b-5d6e7f809a1b\" appv:VersionId=\"8e2f9a3c-1b4d-4c6e-8f7a-9b0c1d2e3f4a\"/></Package>")
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			fuzzCheckErr(t, err, ManifestPart)
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("parsed but does not marshal: %v", err)
		}
		m2, err := ParseManifest(out)
		if err != nil {
			t.Fatalf("output does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(m.View(), m2.View()) {
			t.Fatalf("view changed:\n%s\n%s", jsonOf(m.View()), jsonOf(m2.View()))
		}
		out2, err := m2.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("second marshal differs (%v):\n%s\n%s", err, out, out2)
		}
		in, err := normalizeXML(ManifestPart, data)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := canonicalXML(t, in, false), canonicalXML(t, out, false); a != b {
			t.Fatalf("output not namespace-equivalent to input:\n%s\n%s", a, b)
		}
	})
}

func FuzzParseStreamMap(f *testing.F) {
	seedXMLParts(f, "streammap_",
		`<StreamMap xmlns="http://schemas.microsoft.com/appv/2010/streammap"><FeatureBlock Id="PrimaryFeatureBlock"><File Name="Root\a"><Blocks Index="3" Count="2"/><Blocks Index="0" Count="4"/></File></FeatureBlock></StreamMap>`)
	f.Fuzz(func(t *testing.T, data []byte) {
		sm, err := ParseStreamMap(data)
		if err != nil {
			fuzzCheckErr(t, err, StreamMapPart)
			return
		}
		out, err := sm.Marshal()
		if err != nil {
			t.Fatalf("parsed but does not marshal: %v", err)
		}
		sm2, err := ParseStreamMap(out)
		if err != nil {
			t.Fatalf("output does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(sm, sm2) {
			t.Fatalf("model changed:\n%+v\n%+v", sm, sm2)
		}
		out2, err := sm2.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("second marshal differs (%v):\n%s\n%s", err, out, out2)
		}
		for _, fb := range []*FeatureBlock{&sm.Publishing, &sm.Primary} {
			for _, file := range fb.Files {
				for _, r := range file.Ranges {
					if !fb.Contains(file.Name, r.Index) || !fb.Contains(file.Name, r.Index+r.Count-1) {
						t.Fatalf("%s does not contain its own range %+v", file.Name, r)
					}
				}
			}
		}
	})
}

func FuzzParseFSMetadata(f *testing.F) {
	seedXMLParts(f, "fsmeta_",
		`<Metadata xmlns="http://schemas.microsoft.com/appv/2010/FilesystemMetadata"><l:Linux xmlns:l="http://appv.dev/schemas/2026/linux-filesystem"><l:Entry Path="Root/a" Type="symlink" Target="../b" Mode="0777"/></l:Linux></Metadata>`)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseFSMetadata(data)
		if err != nil {
			fuzzCheckErr(t, err, FSMetadataPart)
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("parsed but does not marshal: %v", err)
		}
		m2, err := ParseFSMetadata(out)
		if err != nil {
			t.Fatalf("output does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("model changed:\n%+v\n%+v", m, m2)
		}
		out2, err := m2.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("second marshal differs (%v):\n%s\n%s", err, out, out2)
		}
		for _, e := range m.Entries {
			e.SymlinkStaysInside("/opt/x") // must not panic
			e.SymlinkStaysInside("")
		}
	})
}

func FuzzParseHistory(f *testing.F) {
	seedXMLParts(f, "history_",
		`<PackageHistory xmlns="http://schemas.microsoft.com/appv/2010/PackageHistory"><PackageHistoryItem Time="2026-01-01T00:00:00.5+01:00" InUpgrade="1"/></PackageHistory>`)
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParsePackageHistory(data)
		if err != nil {
			fuzzCheckErr(t, err, PackageHistoryPart)
			return
		}
		out, err := h.Marshal()
		if err != nil {
			t.Fatalf("parsed but does not marshal: %v", err)
		}
		h2, err := ParsePackageHistory(out)
		if err != nil {
			t.Fatalf("output does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(h, h2) {
			t.Fatalf("model changed:\n%+v\n%+v", h, h2)
		}
		out2, err := h2.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("second marshal differs (%v):\n%s\n%s", err, out, out2)
		}
	})
}
