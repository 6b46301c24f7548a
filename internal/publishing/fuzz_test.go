package publishing

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse: arbitrary input is refused or parsed, never a panic; whatever
// parses, Marshal writes, and that parses to the same document and marshals
// to the same bytes again.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(doc(`<Groups><Group GroupId="` + grp1 + `" VersionId="` + gv1 + `" Priority="7" Name="&amp;&#xA;"><Package PackageId="` + pkgA + `" VersionId="*"/></Group></Groups>`)))
	f.Add([]byte(doc(`<Packages>` + pkg(`PackageUrl="a/b?c#d"`, `<UserConfiguration ConfigurationId="1" Path="u" Timestamp="2025-01-01T00:00:00-12:00" Conflict="true"/>`) + `</Packages>`)))
	base, err := url.Parse("https://pub.example/appv/")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, b := range []*url.URL{nil, base} {
			d, err := ParseWithBase(data, b)
			if err != nil {
				continue
			}
			body, err := Marshal(d)
			if err != nil {
				t.Fatalf("Marshal of a parsed document: %v", err)
			}
			d2, err := ParseWithBase(body, b)
			if err != nil {
				t.Fatalf("Parse(Marshal(d)): %v\n%s", err, body)
			}
			if want := normalized(d); !reflect.DeepEqual(d2, want) {
				t.Fatalf("Parse(Marshal(d)) differs:\n got %+v\nwant %+v", d2, want)
			}
			body2, err := Marshal(d2)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, body2) {
				t.Fatalf("Marshal is not stable:\n%s\n%s", body, body2)
			}
			_ = Diff(d, d2)
		}
	})
}
