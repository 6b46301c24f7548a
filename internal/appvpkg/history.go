package appvpkg

import (
	"encoding/xml"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// PackageHistory.xml records every save of a package by a sequencer: one
// PackageHistoryItem per save, with what App-V's Sequencer knew about the
// sequencing station, all in attributes:
//
//	<PackageHistory xmlns="http://schemas.microsoft.com/appv/2010/PackageHistory">
//	  <PackageHistoryItem Time="2014-10-10T12:00:00.0000000Z" PackageVersion="1"
//	    SequencerVersion="5.0.285.0" SequencerUser="CONTOSO\admin"
//	    SequencingStation="SEQ01" WindowsVersion="6.1.7601.65536"
//	    SystemFolder="C:\Windows\system32" … Processor="…" Locale="en-US"
//	    InUpgrade="false" SaveMode="eSave" />
//	</PackageHistory>
//
// appv records the Linux sequencing station's operating system (os-release
// PRETTY_NAME) in an attribute of its own namespace, NSLinuxHistory, which
// App-V's readers do not know and leave alone.

// NSPackageHistory is the namespace of PackageHistory.xml.
const NSPackageHistory = "http://schemas.microsoft.com/appv/2010/PackageHistory"

// NSLinuxHistory is appv's namespace for what PackageHistory.xml records
// about a Linux sequencing station (attribute OS).
const NSLinuxHistory = "http://appv.dev/schemas/2026/linux-history"

// History actions, recorded by App-V as InUpgrade="false" / "true".
const (
	HistoryCreated  = "created"
	HistoryUpgraded = "upgraded"
)

// PackageHistory is PackageHistory.xml: the saves of the package, oldest
// first. Content it does not model is kept and written back.
type PackageHistory struct {
	Items []HistoryItem `json:"items"`

	extra xmlExtra
}

// HistoryItem is one save of the package.
type HistoryItem struct {
	// Time of the save.
	Time time.Time `json:"time"`
	// Action is HistoryCreated or HistoryUpgraded (App-V's InUpgrade); ""
	// is written as HistoryCreated.
	Action string `json:"action"`
	// PackageVersion as the tool counted it (App-V: 1, 2, …).
	PackageVersion string `json:"packageVersion,omitempty"`
	// SequencerVersion is the version of the tool that saved the package.
	SequencerVersion string `json:"sequencerVersion,omitempty"`
	// PackagingEngine names the tool when it is not App-V's Sequencer.
	PackagingEngine   string `json:"packagingEngine,omitempty"`
	SequencerUser     string `json:"sequencerUser,omitempty"`
	SequencingStation string `json:"sequencingStation,omitempty"`
	// WindowsVersion of a Windows sequencing station.
	WindowsVersion string `json:"windowsVersion,omitempty"`
	// OS of a Linux sequencing station (os-release PRETTY_NAME).
	OS        string `json:"os,omitempty"`
	Processor string `json:"processor,omitempty"`
	Locale    string `json:"locale,omitempty"`
	// SaveMode as App-V records it ("eSave", …).
	SaveMode string `json:"saveMode,omitempty"`
	// Attrs holds the other unprefixed attributes (App-V's SystemFolder,
	// IEVersion, NetFrameworkVersion, …), written back sorted by name.
	Attrs map[string]string `json:"attrs,omitempty"`

	extra xmlExtra
}

// historyField is a typed string attribute of a PackageHistoryItem.
type historyField struct {
	name string
	get  func(*HistoryItem) *string
}

// historyFields are the typed string attributes, in the order they are
// written.
var historyFields = []historyField{
	{"PackageVersion", func(h *HistoryItem) *string { return &h.PackageVersion }},
	{"SequencerVersion", func(h *HistoryItem) *string { return &h.SequencerVersion }},
	{"SequencerUser", func(h *HistoryItem) *string { return &h.SequencerUser }},
	{"SequencingStation", func(h *HistoryItem) *string { return &h.SequencingStation }},
	{"WindowsVersion", func(h *HistoryItem) *string { return &h.WindowsVersion }},
	{"Processor", func(h *HistoryItem) *string { return &h.Processor }},
	{"PackagingEngine", func(h *HistoryItem) *string { return &h.PackagingEngine }},
	{"Locale", func(h *HistoryItem) *string { return &h.Locale }},
	{"SaveMode", func(h *HistoryItem) *string { return &h.SaveMode }},
}

// historyTimeLayouts are the forms of Time accepted: .NET's round-trip "O"
// format with or without an offset.
var historyTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"}

// Append adds a save at the end of the history.
func (h *PackageHistory) Append(item HistoryItem) { h.Items = append(h.Items, item) }

// Latest returns the most recent save, if any.
func (h *PackageHistory) Latest() (HistoryItem, bool) {
	if len(h.Items) == 0 {
		return HistoryItem{}, false
	}
	return h.Items[len(h.Items)-1], true
}

// ParsePackageHistory parses PackageHistory.xml.
func ParsePackageHistory(data []byte) (*PackageHistory, error) {
	doc, err := parsePart(PackageHistoryPart, data)
	if err != nil {
		return nil, err
	}
	root := doc.Root()
	if !isElem(root, NSPackageHistory, "PackageHistory") {
		return nil, formatErr(PackageHistoryPart, nil, "root element is <%s>, not <PackageHistory> in namespace %s", root.FullTag(), NSPackageHistory)
	}
	if err := checkAttrNames(PackageHistoryPart, root); err != nil {
		return nil, err
	}
	h := &PackageHistory{}
	for _, a := range root.Attr {
		if !isNSDecl(a) {
			h.extra.keepAttr(root, a)
		}
	}
	for _, c := range root.ChildElements() {
		if !isElem(c, NSPackageHistory, "PackageHistoryItem") {
			h.extra.keepElem(c)
			continue
		}
		item, err := parseHistoryItem(c)
		if err != nil {
			return nil, err
		}
		h.Items = append(h.Items, item)
	}
	return h, nil
}

func parseHistoryItem(e *etree.Element) (HistoryItem, error) {
	item := HistoryItem{Action: HistoryCreated}
	if err := checkAttrNames(PackageHistoryPart, e); err != nil {
		return item, err
	}
attrs:
	for _, a := range e.Attr {
		if isNSDecl(a) {
			continue
		}
		if a.Space != "" {
			if attrURI(e, a) == NSLinuxHistory && a.Key == "OS" {
				item.OS = a.Value
			} else {
				item.extra.keepAttr(e, a)
			}
			continue
		}
		switch a.Key {
		case "Time":
			t, err := parseHistoryTime(a.Value)
			if err != nil {
				return item, err
			}
			item.Time = t
			continue
		case "InUpgrade":
			up, ok := parseXSDBool(a.Value)
			if !ok {
				return item, formatErr(PackageHistoryPart, nil, "PackageHistoryItem InUpgrade %q is not a boolean", a.Value)
			}
			if up {
				item.Action = HistoryUpgraded
			}
			continue
		}
		for _, f := range historyFields {
			if f.name == a.Key {
				*f.get(&item) = a.Value
				continue attrs
			}
		}
		if item.Attrs == nil {
			item.Attrs = map[string]string{}
		}
		item.Attrs[a.Key] = a.Value
	}
	for _, c := range e.ChildElements() {
		item.extra.keepElem(c)
	}
	return item, nil
}

func parseHistoryTime(s string) (time.Time, error) {
	for _, l := range historyTimeLayouts {
		if t, err := time.Parse(l, strings.TrimSpace(s)); err == nil {
			// One representation per instant and offset: UTC, or an unnamed
			// fixed zone (never Local, which time.Parse picks when the
			// offset happens to match).
			if _, off := t.Zone(); off != 0 {
				return t.In(time.FixedZone("", off)), nil
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, formatErr(PackageHistoryPart, nil, "PackageHistoryItem Time %q is not an ISO 8601 date and time", s)
}

// Marshal writes PackageHistory.xml, deterministically, with what it did not
// model written back.
func (h *PackageHistory) Marshal() ([]byte, error) {
	root := etree.NewElement("PackageHistory")
	root.CreateAttr("xmlns", NSPackageHistory)
	if slices.ContainsFunc(h.Items, func(it HistoryItem) bool { return it.OS != "" }) {
		nsPrefix(root, NSLinuxHistory, "lh", false)
	}
	h.extra.writeAttrs(root)
	skip := map[*etree.Element]bool{}
	for i := range h.Items {
		if err := writeHistoryItem(root, &h.Items[i], skip); err != nil {
			return nil, err
		}
	}
	if err := h.extra.writeElems(PackageHistoryPart, root, skip); err != nil {
		return nil, err
	}
	return writeXMLPart(root, skip)
}

func writeHistoryItem(parent *etree.Element, item *HistoryItem, skip map[*etree.Element]bool) error {
	e := parent.CreateElement("PackageHistoryItem")
	setElemNS(e, NSPackageHistory, "PackageHistoryItem", "ph")
	if !item.Time.IsZero() {
		if y := item.Time.Year(); y < 0 || y > 9999 {
			return formatErr(PackageHistoryPart, nil, "PackageHistoryItem Time %v is outside years 0-9999", item.Time)
		}
		e.CreateAttr("Time", item.Time.Format(time.RFC3339Nano))
	}
	for _, f := range historyFields {
		v := *f.get(item)
		if v == "" {
			continue
		}
		if !validXMLString(v) {
			return formatErr(PackageHistoryPart, nil, "PackageHistoryItem %s %q is not valid XML text", f.name, v)
		}
		e.CreateAttr(f.name, v)
	}
	switch item.Action {
	case HistoryCreated, "":
		e.CreateAttr("InUpgrade", "false")
	case HistoryUpgraded:
		e.CreateAttr("InUpgrade", "true")
	default:
		return formatErr(PackageHistoryPart, nil, "history action %q is neither %q nor %q", item.Action, HistoryCreated, HistoryUpgraded)
	}
	for _, k := range slices.Sorted(maps.Keys(item.Attrs)) {
		v := item.Attrs[k]
		if k == "Time" || k == "InUpgrade" || k == "xmlns" || slices.ContainsFunc(historyFields, func(f historyField) bool { return f.name == k }) {
			return formatErr(PackageHistoryPart, nil, "history attribute %q duplicates a typed field", k)
		}
		if !validXMLName(k) || !validXMLString(v) {
			return formatErr(PackageHistoryPart, nil, "history attribute %q=%q cannot be written as XML", k, v)
		}
		e.CreateAttr(k, v)
	}
	if item.OS != "" {
		if !validXMLString(item.OS) {
			return formatErr(PackageHistoryPart, nil, "PackageHistoryItem OS %q is not valid XML text", item.OS)
		}
		p := nsPrefix(e, NSLinuxHistory, "lh", false)
		e.CreateAttr(p+":OS", item.OS)
	}
	item.extra.writeAttrs(e)
	return item.extra.writeElems(PackageHistoryPart, e, skip)
}

// validXMLName reports whether s is usable as an unprefixed attribute name.
func validXMLName(s string) bool {
	if s == "" || strings.ContainsAny(s, ":=\"'<>&/ \t\r\n") {
		return false
	}
	d := xml.NewDecoder(strings.NewReader("<a " + s + `=""/>`))
	tok, err := d.RawToken()
	if err != nil {
		return false
	}
	st, ok := tok.(xml.StartElement)
	if !ok || len(st.Attr) != 1 || st.Attr[0].Name.Local != s || st.Attr[0].Name.Space != "" {
		return false
	}
	_, err = d.RawToken()
	return err == nil || err == io.EOF
}
