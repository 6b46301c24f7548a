package sequencer

import (
	"bytes"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

var updateReport = flag.Bool("update-report", false, "rewrite testdata/capture/*.golden from the current output")

// sampleReport has one message of each kind a sequencing run writes, out
// of order, with a duplicate and characters XML must escape or cannot hold.
func sampleReport() *Report {
	r := &Report{}
	r.Add(Info, "PackageRoot", "/opt/foo", "primary virtual application directory: the only directory of /opt the installer added to or changed")
	r.Add(Warning, "Setuid", "/opt/foo/bin/helper", "a set-user-ID program: in a virtual environment it runs without its owner's privileges")
	r.Add(Info, "Excluded", "/var/log", "log files: left out of the package (3 paths)")
	r.Add(Warning, "SystemdUnit", "/etc/systemd/system/foo.service", "systemd does not see a virtual environment's files")
	r.Add(Info, "Excluded", "/var/lib/dpkg", "dpkg's database & state <not packaged>")
	r.Add(Warning, "Excluded", "/opt/foo/odd\x01name", "a named pipe")
	r.Add(Error, "Launch", "", "launch command \"foo --bar\" exited with code 2")
	r.Add(Warning, "Setuid", "/opt/foo/bin/helper", "a set-user-ID program: in a virtual environment it runs without its owner's privileges")
	return r
}

func TestReportMarshal(t *testing.T) {
	r := sampleReport()
	got, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "capture", "report.golden.xml")
	if *updateReport {
		capMust(t, os.MkdirAll(filepath.Dir(golden), 0o755))
		capMust(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update-report to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Report.xml differs from %s:\n%s", golden, got)
	}

	// The same messages in another order give the same bytes.
	r2 := &Report{Messages: slices.Clone(r.Messages)}
	slices.Reverse(r2.Messages)
	got2, err := r2.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, got2) {
		t.Error("Marshal depends on the order of the messages")
	}

	// It reads back.
	var doc struct {
		XMLName  xml.Name
		Messages []struct {
			Severity string `xml:"Severity,attr"`
			Category string `xml:"Category,attr"`
			Path     string `xml:"Path,attr"`
			Text     string `xml:",chardata"`
		} `xml:"Message"`
	}
	if err := xml.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.XMLName.Space != NSReport || doc.XMLName.Local != "Report" || len(doc.Messages) != 7 {
		t.Fatalf("read back %v with %d messages", doc.XMLName, len(doc.Messages))
	}
	if m := doc.Messages[0]; m.Severity != "Error" || m.Path != "" || m.Text != `launch command "foo --bar" exited with code 2` {
		t.Errorf("first message %+v, want the error", m)
	}
}

func TestReportEmpty(t *testing.T) {
	got, err := (&Report{}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := xml.Header + `<Report xmlns="` + NSReport + `"></Report>` + "\n"
	if string(got) != want {
		t.Errorf("empty report:\n%s\nwant:\n%s", got, want)
	}
}

func TestReportSummary(t *testing.T) {
	tests := []struct {
		name string
		r    *Report
		want string
	}{
		{name: "empty", r: &Report{}, want: "nothing excluded, no warnings"},
		{name: "sample", r: sampleReport(), want: "2 excluded trees, 3 warnings (1 Excluded, 1 Setuid, 1 SystemdUnit), 1 error (1 Launch)"},
		{
			name: "one of each",
			r: &Report{Messages: []Message{
				{Severity: Info, Category: "Excluded", Path: "/tmp", Text: "x"},
				{Severity: Info, Category: "PackageRoot", Path: "/opt/x", Text: "x"},
				{Severity: Warning, Category: "Symlink", Path: "/usr/bin/x", Text: "x"},
			}},
			want: "1 excluded tree, 1 warning (1 Symlink)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Summary(); got != tt.want {
				t.Errorf("Summary() = %q, want %q", got, tt.want)
			}
		})
	}
}
