package appvpkg

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

func TestParsePackageHistoryFixtures(t *testing.T) {
	t.Run("appv5", func(t *testing.T) {
		h, err := ParsePackageHistory(readXMLFixture(t, "history_appv5.xml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Items) != 2 {
			t.Fatalf("%d items, want 2", len(h.Items))
		}
		first := h.Items[0]
		wantTime := time.Date(2014, 10, 10, 7, 12, 44, 123456700, time.UTC)
		if !first.Time.Equal(wantTime) {
			t.Errorf("time = %v, want %v", first.Time, wantTime)
		}
		if _, off := first.Time.Zone(); off != 2*3600 {
			t.Errorf("offset %d lost", off)
		}
		if first.Action != HistoryCreated || first.PackageVersion != "1" || first.SequencerVersion != "5.0.285.0" ||
			first.SequencerUser != `CONTOSO\sequencer` || first.SequencingStation != "SEQ-W7X64" ||
			first.WindowsVersion != "6.1.7601.65536" || first.Locale != "en-US" || first.SaveMode != "eSave" ||
			first.Processor == "" {
			t.Errorf("first item = %+v", first)
		}
		wantAttrs := map[string]string{
			"SystemFolder": `C:\Windows\system32`, "WindowsFolder": `C:\Windows`, "UserFolder": `C:\Users\sequencer`,
			"SystemType": "1", "LastRebootNormal": "0", "TerminalServices": "1", "RemoteSession": "0",
			"NetFrameworkVersion": "4.0.30319.1", "IEVersion": "9.0.8112.16421", "PackageOSBitness": "64",
		}
		if !reflect.DeepEqual(first.Attrs, wantAttrs) {
			t.Errorf("attrs = %v, want %v", first.Attrs, wantAttrs)
		}
		last, ok := h.Latest()
		if !ok || last.Action != HistoryUpgraded || last.PackageVersion != "2" || !last.Time.Equal(time.Date(2015, 3, 2, 16, 40, 5, 500000000, time.UTC)) {
			t.Errorf("latest = %+v", last)
		}
	})
	t.Run("linux", func(t *testing.T) {
		h, err := ParsePackageHistory(readXMLFixture(t, "history_linux.xml"))
		if err != nil {
			t.Fatal(err)
		}
		want := HistoryItem{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Action: HistoryCreated, PackageVersion: "1",
			SequencerVersion: "0.1.0", PackagingEngine: "appv", SequencerUser: "builder", SequencingStation: "build01",
			OS: "Debian GNU/Linux 13 (trixie)", Locale: "en_US.UTF-8"}
		if len(h.Items) != 1 || !reflect.DeepEqual(h.Items[0], want) {
			t.Errorf("items = %+v, want %+v", h.Items, want)
		}
	})
}

func TestPackageHistoryRoundTrip(t *testing.T) {
	for _, name := range xmlFixtures(t, "history_") {
		t.Run(name, func(t *testing.T) {
			h, err := ParsePackageHistory(readXMLFixture(t, name))
			if err != nil {
				t.Fatal(err)
			}
			out, err := h.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, name, out)
			h2, err := ParsePackageHistory(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !reflect.DeepEqual(h, h2) {
				t.Errorf("model changed:\n%+v\n%+v", h, h2)
			}
			out2, _ := h2.Marshal()
			if !bytes.Equal(out, out2) {
				t.Errorf("second marshal differs")
			}
		})
	}
}

func TestPackageHistoryAppend(t *testing.T) {
	var h PackageHistory
	if _, ok := h.Latest(); ok {
		t.Errorf("empty history has a latest item")
	}
	h.Append(HistoryItem{Time: time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC), Action: HistoryCreated, PackageVersion: "1",
		SequencerVersion: "0.1.0", PackagingEngine: "appv", OS: "Fedora Linux 43", Attrs: map[string]string{"Kernel": "6.18.0"}})
	h.Append(HistoryItem{Time: time.Date(2026, 3, 1, 0, 0, 0, 0, time.FixedZone("", -5*3600)), Action: HistoryUpgraded, PackageVersion: "2"})
	out, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "history_new.xml", out)
	back, err := ParsePackageHistory(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Items) != 2 || back.Items[0].OS != "Fedora Linux 43" || back.Items[0].Attrs["Kernel"] != "6.18.0" ||
		back.Items[1].Action != HistoryUpgraded || !back.Items[1].Time.Equal(h.Items[1].Time) {
		t.Errorf("round trip = %+v", back.Items)
	}
	// Appending to a parsed history keeps what was there.
	old, _ := ParsePackageHistory(readXMLFixture(t, "history_appv5.xml"))
	old.Append(HistoryItem{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Action: HistoryUpgraded, PackageVersion: "3"})
	out, err = old.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err = ParsePackageHistory(out)
	if err != nil || len(back.Items) != 3 || back.Items[0].Attrs["IEVersion"] != "9.0.8112.16421" {
		t.Errorf("append to parsed: %v %+v", err, back)
	}
}

func TestPackageHistoryKeepsUnknown(t *testing.T) {
	in := `<PackageHistory xmlns="http://schemas.microsoft.com/appv/2010/PackageHistory" xmlns:u="urn:u" u:root="1">
  <PackageHistoryItem Time="2026-01-01T00:00:00Z" u:item="2"><u:Child a="b">x</u:Child></PackageHistoryItem>
  <u:Other/>
</PackageHistory>`
	h, err := ParsePackageHistory([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`u:root="1"`, `u:item="2"`, `<u:Child a="b">x</u:Child>`, `<u:Other/>`} {
		if !bytes.Contains(out, []byte(s)) {
			t.Errorf("output lost %s:\n%s", s, out)
		}
	}
}

func TestPackageHistoryErrors(t *testing.T) {
	const head = `<PackageHistory xmlns="http://schemas.microsoft.com/appv/2010/PackageHistory">`
	tests := []struct {
		name, xml, rule string
	}{
		{"not XML", `<PackageHistory`, "not well-formed"},
		{"wrong root", `<History xmlns="http://schemas.microsoft.com/appv/2010/PackageHistory"/>`, "not <PackageHistory>"},
		{"wrong namespace", `<PackageHistory xmlns="urn:x"/>`, "not <PackageHistory> in namespace"},
		{"bad time", head + `<PackageHistoryItem Time="yesterday"/></PackageHistory>`, `Time "yesterday"`},
		{"bad upgrade", head + `<PackageHistoryItem InUpgrade="perhaps"/></PackageHistory>`, "InUpgrade"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePackageHistory([]byte(tt.xml))
			wantFormatError(t, err, PackageHistoryPart, tt.rule)
		})
	}
	marshal := []struct {
		name string
		item HistoryItem
		rule string
	}{
		{"action", HistoryItem{Action: "edited"}, "history action"},
		{"typed attr in Attrs", HistoryItem{Attrs: map[string]string{"Locale": "x"}}, "duplicates a typed field"},
		{"bad attr name", HistoryItem{Attrs: map[string]string{"a b": "x"}}, "cannot be written"},
		{"prefixed attr name", HistoryItem{Attrs: map[string]string{"a:b": "x"}}, "cannot be written"},
		{"bad text", HistoryItem{SequencerUser: "a\x00"}, "not valid XML text"},
		{"bad OS", HistoryItem{OS: "\uFFFE"}, "not valid XML text"},
		{"year", HistoryItem{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "outside years"},
	}
	for _, tt := range marshal {
		t.Run("marshal "+tt.name, func(t *testing.T) {
			h := PackageHistory{Items: []HistoryItem{tt.item}}
			_, err := h.Marshal()
			wantFormatError(t, err, PackageHistoryPart, tt.rule)
		})
	}
}
