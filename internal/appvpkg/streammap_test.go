package appvpkg

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestParseStreamMapFixtures(t *testing.T) {
	const writer = `Root\VFS\ProgramFilesX86\Office Suite\WRITER.EXE`
	t.Run("windows", func(t *testing.T) {
		sm, err := ParseStreamMap(readXMLFixture(t, "streammap_windows.xml"))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(sm.Publishing.Files); n != 4 {
			t.Fatalf("publishing has %d files, want 4", n)
		}
		if f := sm.Publishing.Files[0]; !f.Whole() || !strings.HasSuffix(f.Name, `wordicon.exe.0.ico`) {
			t.Errorf("first publishing file = %+v", f)
		}
		wantPrimary := []FeatureFile{
			{Name: writer, Ranges: []BlockRange{{0, 3}, {20, 2}}},
			{Name: `Root\VFS\ProgramFilesX86\Office Suite\GFX.DLL`, Ranges: []BlockRange{{0, 2}, {6, 2}, {22, 5}}},
			{Name: `Root\VFS\ProgramFilesX86\Office Suite\SETLANG.EXE`},
			{Name: `Root\VFS\ProgramFilesX86\Office Suite\OUTLOOK.EXE`, Ranges: []BlockRange{{0, 1}, {36, 3}, {65, 2}, {205, 2}, {210, 2}, {221, 5}, {230, 13}}},
		}
		if !reflect.DeepEqual(sm.Primary.Files, wantPrimary) {
			t.Errorf("primary files = %+v, want %+v", sm.Primary.Files, wantPrimary)
		}
		if sm.Primary.LoadAll || sm.Publishing.LoadAll {
			t.Errorf("LoadAll set")
		}
	})
	t.Run("unknown content", func(t *testing.T) {
		sm, err := ParseStreamMap(readXMLFixture(t, "streammap_unknown.xml"))
		if err != nil {
			t.Fatal(err)
		}
		want := []FeatureFile{
			{Name: `Root\bin\editor`, Ranges: []BlockRange{{0, 4}, {10, 1}}},
			{Name: `Root\share\icons\hicolor\48x48\apps\editor.png`},
		}
		if len(sm.Publishing.Files) != 2 {
			t.Fatalf("publishing = %+v", sm.Publishing.Files)
		}
		for i := range want {
			if got := sm.Publishing.Files[i]; got.Name != want[i].Name || !reflect.DeepEqual(got.Ranges, want[i].Ranges) {
				t.Errorf("file %d = %+v, want %+v", i, got, want[i])
			}
		}
		if !sm.Primary.LoadAll || len(sm.Primary.Files) != 0 {
			t.Errorf("primary = %+v, want LoadAll and no files", sm.Primary)
		}
		out, err := sm.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		checkGolden(t, "streammap_unknown.xml", out)
		for _, s := range []string{`x:Note="kept"`, `x:Reason="exec"`, `<x:Hint Level="3"/>`, `Id="SecondaryFeatureBlock"`,
			`Files="3">text <b xmlns="">inside</b></x:Statistics>`} {
			if !bytes.Contains(out, []byte(s)) {
				t.Errorf("output lost %s:\n%s", s, out)
			}
		}
	})
}

func TestStreamMapRoundTrip(t *testing.T) {
	for _, name := range xmlFixtures(t, "streammap_") {
		t.Run(name, func(t *testing.T) {
			in := readXMLFixture(t, name)
			sm, err := ParseStreamMap(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := sm.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			sm2, err := ParseStreamMap(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !reflect.DeepEqual(sm, sm2) {
				t.Errorf("model changed:\n%+v\n%+v", sm, sm2)
			}
			out2, err := sm2.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, out2) {
				t.Errorf("second marshal differs:\n%s\n%s", out, out2)
			}
		})
	}
	// A canonical input comes back namespace-equivalent.
	in := readXMLFixture(t, "streammap_windows.xml")
	sm, _ := ParseStreamMap(in)
	out, _ := sm.Marshal()
	if got, want := canonicalXML(t, out, true), canonicalXML(t, in, true); got != want {
		t.Errorf("not namespace-equivalent:\n got %s\nwant %s", got, want)
	}
}

func TestFeatureBlockContains(t *testing.T) {
	fb := FeatureBlock{Files: []FeatureFile{
		{Name: `Root\a`, Ranges: []BlockRange{{0, 1}, {5, 3}, {100, 1}}},
		{Name: `Root\whole`},
	}}
	tests := []struct {
		name  string
		block int
		want  bool
	}{
		{`Root\a`, 0, true},
		{`Root\a`, 1, false},
		{`Root\a`, 4, false},
		{`Root\a`, 5, true},
		{`Root\a`, 7, true},
		{`Root\a`, 8, false},
		{`Root\a`, 100, true},
		{`Root\a`, 101, false},
		{`Root\a`, -1, false},
		{"Root/a", 6, true}, // package path spelling
		{`Root\whole`, 0, true},
		{`Root\whole`, 1 << 30, true},
		{`Root\whole`, -1, false},
		{`Root\missing`, 0, false},
		{`root\a`, 0, false}, // names are exact
	}
	for _, tt := range tests {
		t.Run(tt.name+"#"+string(rune('0'+tt.block%10)), func(t *testing.T) {
			if got := fb.Contains(tt.name, tt.block); got != tt.want {
				t.Errorf("Contains(%q, %d) = %v, want %v", tt.name, tt.block, got, tt.want)
			}
		})
	}
}

func TestFeatureBlockAdd(t *testing.T) {
	type add struct {
		name   string
		ranges []BlockRange
	}
	tests := []struct {
		name string
		adds []add
		want []FeatureFile
	}{
		{"coalesce adjacent and overlapping", []add{{"Root/a", []BlockRange{{5, 2}, {0, 1}, {1, 2}, {6, 4}}}},
			[]FeatureFile{{Name: `Root\a`, Ranges: []BlockRange{{0, 3}, {5, 5}}}}},
		{"merge later adds", []add{{"Root/a", []BlockRange{{10, 1}}}, {`Root\a`, []BlockRange{{11, 1}, {0, 1}}}},
			[]FeatureFile{{Name: `Root\a`, Ranges: []BlockRange{{0, 1}, {10, 2}}}}},
		{"contained range", []add{{"Root/a", []BlockRange{{0, 10}}}, {"Root/a", []BlockRange{{2, 3}}}},
			[]FeatureFile{{Name: `Root\a`, Ranges: []BlockRange{{0, 10}}}}},
		{"whole absorbs ranges", []add{{"Root/a", []BlockRange{{3, 1}}}, {"Root/a", nil}, {"Root/a", []BlockRange{{9, 1}}}},
			[]FeatureFile{{Name: `Root\a`}}},
		{"order of first use", []add{{"Root/b", nil}, {"Root/a", []BlockRange{{0, 1}}}, {"Root/b", []BlockRange{{1, 1}}}},
			[]FeatureFile{{Name: `Root\b`}, {Name: `Root\a`, Ranges: []BlockRange{{0, 1}}}}},
		{"largest range", []add{{"Root/big", []BlockRange{{0, math.MaxInt32}}}},
			[]FeatureFile{{Name: `Root\big`, Ranges: []BlockRange{{0, math.MaxInt32}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fb FeatureBlock
			for _, a := range tt.adds {
				if err := fb.Add(a.name, a.ranges...); err != nil {
					t.Fatal(err)
				}
			}
			if !reflect.DeepEqual(fb.Files, tt.want) {
				t.Errorf("files = %+v, want %+v", fb.Files, tt.want)
			}
		})
	}
}

func TestFeatureBlockAddErrors(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		ranges []BlockRange
		rule   string
	}{
		{"negative index", "Root/a", []BlockRange{{-1, 1}}, "negative"},
		{"zero count", "Root/a", []BlockRange{{0, 0}}, "not positive"},
		{"overflow", "Root/a", []BlockRange{{math.MaxInt32, 1}}, "beyond"},
		{"huge overflow", "Root/a", []BlockRange{{math.MaxInt, math.MaxInt}}, "beyond"},
		{"dot-dot", "Root/../etc/passwd", nil, "not a valid block-map name"},
		{"absolute", "/etc/passwd", nil, "not a valid block-map name"},
		{"empty", "", nil, "not a valid block-map name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fb FeatureBlock
			wantFormatError(t, fb.Add(tt.file, tt.ranges...), StreamMapPart, tt.rule)
			if len(fb.Files) != 0 {
				t.Errorf("failed Add changed the block: %+v", fb.Files)
			}
		})
	}
}

func TestFeatureBlockMerge(t *testing.T) {
	a := FeatureBlock{Files: []FeatureFile{{Name: `Root\x`, Ranges: []BlockRange{{0, 1}}}}}
	b := FeatureBlock{LoadAll: true, Files: []FeatureFile{{Name: `Root\x`, Ranges: []BlockRange{{1, 1}}}, {Name: `Root\y`}}}
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	want := FeatureBlock{LoadAll: true, Files: []FeatureFile{{Name: `Root\x`, Ranges: []BlockRange{{0, 2}}}, {Name: `Root\y`}}}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("merged = %+v, want %+v", a, want)
	}
}

func TestStreamMapMarshalNew(t *testing.T) {
	var sm StreamMap
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(sm.Publishing.Add("Root/share/icons/app.png"))
	must(sm.Publishing.Add("Root/bin/app", BlockRange{0, 1}))
	must(sm.Primary.Add("Root/bin/app", BlockRange{4, 2}, BlockRange{0, 3}))
	must(sm.Primary.Add("Root/lib/libapp.so", BlockRange{7, 1}))
	out, err := sm.Marshal()
	must(err)
	checkGolden(t, "streammap_new.xml", out)
	back, err := ParseStreamMap(out)
	must(err)
	if !reflect.DeepEqual(back, &sm) {
		t.Errorf("round trip: %+v, want %+v", back, &sm)
	}
	// An empty stream map still names the publishing block.
	out, err = (&StreamMap{}).Marshal()
	must(err)
	if !bytes.Contains(out, []byte(`<FeatureBlock Id="PublishingFeatureBlock"/>`)) || bytes.Contains(out, []byte("Primary")) {
		t.Errorf("empty stream map:\n%s", out)
	}
	// Files added to the slice directly are normalized on the way out.
	sm = StreamMap{Primary: FeatureBlock{Files: []FeatureFile{
		{Name: `Root\a`, Ranges: []BlockRange{{3, 1}, {0, 1}}}, {Name: `Root\a`, Ranges: []BlockRange{{1, 2}}},
	}}}
	out, err = sm.Marshal()
	must(err)
	if !bytes.Contains(out, []byte(`<File Name="Root\a">`+"\n      "+`<Blocks Index="0" Count="4"/>`+"\n    </File>")) {
		t.Errorf("not normalized:\n%s", out)
	}
	sm.Primary.Files[0].Ranges[0].Count = -3
	_, err = sm.Marshal()
	wantFormatError(t, err, StreamMapPart, "not positive")
}

func TestStreamMapErrors(t *testing.T) {
	const head = `<StreamMap xmlns="http://schemas.microsoft.com/appv/2010/streammap">`
	file := func(inner string) string {
		return head + `<FeatureBlock Id="PrimaryFeatureBlock"><File Name="Root\a">` + inner + `</File></FeatureBlock></StreamMap>`
	}
	tests := []struct {
		name, xml, rule string
	}{
		{"not XML", `<StreamMap`, "not well-formed"},
		{"stray end tag", `</StreamMap><StreamMap xmlns="http://schemas.microsoft.com/appv/2010/streammap"/>`, "without a start tag"},
		{"element named xmlns", head + `<xmlns:x/></StreamMap>`, "reserved prefix xmlns"},
		{"wrong root", `<Streams xmlns="http://schemas.microsoft.com/appv/2010/streammap"/>`, "not <StreamMap>"},
		{"no namespace", `<StreamMap/>`, "not <StreamMap> in namespace"},
		{"duplicate block", head + `<FeatureBlock Id="PublishingFeatureBlock"/><FeatureBlock Id="PublishingFeatureBlock"/></StreamMap>`, "more than one FeatureBlock"},
		{"LoadAll", head + `<FeatureBlock Id="PrimaryFeatureBlock" LoadAll="all"/></StreamMap>`, "LoadAll"},
		{"no name", head + `<FeatureBlock Id="PrimaryFeatureBlock"><File/></FeatureBlock></StreamMap>`, "File element without a Name"},
		{"bad name", head + `<FeatureBlock Id="PrimaryFeatureBlock"><File Name="Root\..\x"/></FeatureBlock></StreamMap>`, "not a valid block-map name"},
		{"no index", file(`<Blocks Count="1"/>`), "without Index"},
		{"no count", file(`<Blocks Index="1"/>`), "without Count"},
		{"negative index", file(`<Blocks Index="-1" Count="1"/>`), "negative"},
		{"zero count", file(`<Blocks Index="0" Count="0"/>`), "not positive"},
		{"negative count", file(`<Blocks Index="0" Count="-5"/>`), "not positive"},
		{"overflow", file(`<Blocks Index="2147483647" Count="1"/>`), "beyond"},
		{"too big", file(`<Blocks Index="99999999999999999999" Count="1"/>`), "not an integer in range"},
		{"not a number", file(`<Blocks Index="one" Count="1"/>`), "not an integer"},
		{"duplicate attribute", `<StreamMap xmlns="http://schemas.microsoft.com/appv/2010/streammap" xmlns:a="urn:x" xmlns:b="urn:x" a:k="1" b:k="2"/>`, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseStreamMap([]byte(tt.xml))
			wantFormatError(t, err, StreamMapPart, tt.rule)
		})
	}
}
