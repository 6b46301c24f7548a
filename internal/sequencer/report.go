package sequencer

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
)

// NSReport is the namespace of Report.xml. App-V's Sequencer writes a
// Report.xml whose schema Microsoft does not publish; appv writes its own,
// as simple as it can be:
//
//	<?xml version="1.0" encoding="UTF-8"?>
//	<Report xmlns="http://appv.dev/schemas/2026/sequencer-report">
//	  <Message Severity="Warning" Category="Setuid" Path="/opt/foo/bin/helper">a set-user-ID program: ...</Message>
//	  <Message Severity="Info" Category="Excluded" Path="/var/log">log files: left out of the package (3 paths)</Message>
//	</Report>
//
// Messages are sorted: errors, then warnings, then information; within a
// severity by category, path and text. Path, a native path ("~/..." for the
// per-user folders), is left out when a message concerns no path.
const NSReport = "http://appv.dev/schemas/2026/sequencer-report"

type reportXML struct {
	XMLName  xml.Name     `xml:"http://appv.dev/schemas/2026/sequencer-report Report"`
	Messages []messageXML `xml:"Message"`
}

type messageXML struct {
	Severity Severity `xml:"Severity,attr"`
	Category string   `xml:"Category,attr"`
	Path     string   `xml:"Path,attr,omitempty"`
	Text     string   `xml:",chardata"`
}

// severityRank orders severities, most severe first.
func severityRank(s Severity) int {
	switch s {
	case Error:
		return 0
	case Warning:
		return 1
	case Info:
		return 2
	}
	return 3
}

// Sorted returns the report's messages in Report.xml's order, without
// duplicates.
func (r *Report) Sorted() []Message {
	if r == nil {
		return nil
	}
	ms := slices.Clone(r.Messages)
	slices.SortFunc(ms, func(a, b Message) int {
		if d := severityRank(a.Severity) - severityRank(b.Severity); d != 0 {
			return d
		}
		if d := strings.Compare(string(a.Severity), string(b.Severity)); d != 0 {
			return d
		}
		if d := strings.Compare(a.Category, b.Category); d != 0 {
			return d
		}
		if d := strings.Compare(a.Path, b.Path); d != 0 {
			return d
		}
		return strings.Compare(a.Text, b.Text)
	})
	return slices.Compact(ms)
}

// Marshal returns Report.xml (see NSReport): deterministic, the same
// messages in any order giving the same bytes. Characters XML cannot hold
// (in odd file names) are written as U+FFFD.
func (r *Report) Marshal() ([]byte, error) {
	doc := reportXML{Messages: []messageXML{}}
	for _, m := range r.Sorted() {
		doc.Messages = append(doc.Messages, messageXML{Severity: m.Severity, Category: m.Category, Path: m.Path, Text: m.Text})
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("sequencer: report: %w", err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// Summary is one line for the command's output, e.g. "3 excluded trees,
// 2 warnings (1 Setuid, 1 SystemdUnit)": the exclusions (Info messages of
// category Excluded), then warnings and errors counted by category.
func (r *Report) Summary() string {
	var excluded int
	warnings := make(map[string]int)
	errs := make(map[string]int)
	for _, m := range r.Sorted() {
		switch {
		case m.Severity == Info && m.Category == "Excluded":
			excluded++
		case m.Severity == Warning:
			warnings[m.Category]++
		case m.Severity == Error:
			errs[m.Category]++
		}
	}
	parts := []string{fmt.Sprintf("%d excluded %s", excluded, plural(excluded, "tree", "trees"))}
	if excluded == 0 {
		parts[0] = "nothing excluded"
	}
	count := func(byCat map[string]int, one, many string) {
		n := 0
		var cats []string
		for _, c := range sortedKeys(byCat) {
			n += byCat[c]
			cats = append(cats, fmt.Sprintf("%d %s", byCat[c], c))
		}
		if n == 0 {
			parts = append(parts, "no "+many)
			return
		}
		parts = append(parts, fmt.Sprintf("%d %s (%s)", n, plural(n, one, many), strings.Join(cats, ", ")))
	}
	count(warnings, "warning", "warnings")
	if len(errs) > 0 {
		count(errs, "error", "errors")
	}
	return strings.Join(parts, ", ")
}
