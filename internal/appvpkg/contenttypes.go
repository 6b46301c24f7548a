package appvpkg

import (
	"bytes"
	"encoding/xml"
	"path"
	"sort"
	"strings"
)

// ContentTypesNS is the OPC content-types namespace.
const ContentTypesNS = "http://schemas.openxmlformats.org/package/2006/content-types"

// ContentTypes is [Content_Types].xml: a content type per file extension,
// with overrides per part.
type ContentTypes struct {
	Defaults  map[string]string // lower-case extension without dot -> type
	Overrides map[string]string // part name ("/AppxManifest.xml") -> type
}

type xmlTypes struct {
	XMLName   xml.Name `xml:"Types"`
	Defaults  []xmlDefault
	Overrides []xmlOverride
}

type xmlDefault struct {
	XMLName     xml.Name `xml:"Default"`
	Extension   string   `xml:"Extension,attr"`
	ContentType string   `xml:"ContentType,attr"`
}

type xmlOverride struct {
	XMLName     xml.Name `xml:"Override"`
	PartName    string   `xml:"PartName,attr"`
	ContentType string   `xml:"ContentType,attr"`
}

// ParseContentTypes parses [Content_Types].xml.
func ParseContentTypes(data []byte) (*ContentTypes, error) {
	const part = ContentTypesPart
	data, err := checkXML(part, data)
	if err != nil {
		return nil, err
	}
	var x struct {
		XMLName   xml.Name
		Defaults  []xmlDefault  `xml:"Default"`
		Overrides []xmlOverride `xml:"Override"`
	}
	if err := xml.Unmarshal(data, &x); err != nil {
		return nil, formatErr(part, err, "not a content-types document")
	}
	if x.XMLName.Local != "Types" || x.XMLName.Space != ContentTypesNS {
		return nil, formatErr(part, nil, "root element is {%s}%s, want Types in %s", x.XMLName.Space, x.XMLName.Local, ContentTypesNS)
	}
	ct := &ContentTypes{Defaults: map[string]string{}, Overrides: map[string]string{}}
	for _, d := range x.Defaults {
		ext := strings.ToLower(d.Extension)
		if ext == "" || d.ContentType == "" {
			return nil, formatErr(part, nil, "Default with empty Extension or ContentType")
		}
		if _, dup := ct.Defaults[ext]; dup {
			return nil, formatErr(part, nil, "Default for extension %q given twice", d.Extension)
		}
		ct.Defaults[ext] = d.ContentType
	}
	for _, o := range x.Overrides {
		if !strings.HasPrefix(o.PartName, "/") || o.ContentType == "" {
			return nil, formatErr(part, nil, "Override %q: part name must start with / and have a content type", o.PartName)
		}
		key := strings.ToLower(o.PartName)
		if _, dup := ct.Overrides[key]; dup {
			return nil, formatErr(part, nil, "Override for %q given twice", o.PartName)
		}
		ct.Overrides[key] = o.ContentType
	}
	return ct, nil
}

// TypeOf returns the content type of a ZIP entry name, and whether one is
// declared.
func (ct *ContentTypes) TypeOf(zipName string) (string, bool) {
	if t, ok := ct.Overrides["/"+strings.ToLower(zipName)]; ok {
		return t, true
	}
	ext := strings.TrimPrefix(path.Ext(zipName), ".")
	if t, ok := ct.Defaults[strings.ToLower(ext)]; ok && ext != "" {
		return t, true
	}
	return "", false
}

// Well-known content types of App-V parts.
const (
	ctBlockMap = "application/vnd.ms-appx.blockmap+xml"
	ctManifest = "application/vnd.ms-appx.manifest+xml"
	ctXML      = "application/xml"
	ctOctet    = "application/octet-stream"
)

// contentTypeBuilder collects what the writer needs: a Default per file
// extension and an Override for files without one.
type contentTypeBuilder struct {
	defaults  map[string]string
	overrides map[string]string
}

func newContentTypeBuilder() *contentTypeBuilder {
	return &contentTypeBuilder{defaults: map[string]string{}, overrides: map[string]string{}}
}

// add registers a ZIP entry name.
func (b *contentTypeBuilder) add(zipName string) {
	switch zipName {
	case ManifestPart:
		b.overrides["/"+zipName] = ctManifest
		return
	case BlockMapPart:
		b.overrides["/"+zipName] = ctBlockMap
		return
	}
	base := path.Base(zipName)
	ext := strings.TrimPrefix(path.Ext(base), ".")
	// A name like ".bashrc" or "Makefile" has no usable extension; nor does
	// one whose extension is not a plain token.
	if ext == "" || ext == base[1:] || !plainExt(ext) {
		b.overrides["/"+zipName] = ctOctet
		return
	}
	ext = strings.ToLower(ext)
	if _, ok := b.defaults[ext]; !ok {
		b.defaults[ext] = contentTypeForExt(ext)
	}
}

func plainExt(ext string) bool {
	for i := 0; i < len(ext); i++ {
		c := ext[i]
		if !(('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func contentTypeForExt(ext string) string {
	switch ext {
	case "xml":
		return ctXML
	case "txt":
		return "text/plain"
	case "png":
		return "image/png"
	case "svg":
		return "image/svg+xml"
	case "html", "htm":
		return "text/html"
	case "js":
		return "application/javascript"
	case "json":
		return "application/json"
	case "css":
		return "text/css"
	}
	return ctOctet
}

// marshal writes the document in a deterministic order.
func (b *contentTypeBuilder) marshal() []byte {
	var x xmlTypes
	for ext, t := range b.defaults {
		x.Defaults = append(x.Defaults, xmlDefault{Extension: ext, ContentType: t})
	}
	sort.Slice(x.Defaults, func(i, j int) bool { return x.Defaults[i].Extension < x.Defaults[j].Extension })
	for p, t := range b.overrides {
		x.Overrides = append(x.Overrides, xmlOverride{PartName: p, ContentType: t})
	}
	sort.Slice(x.Overrides, func(i, j int) bool { return x.Overrides[i].PartName < x.Overrides[j].PartName })
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	// Written with the namespace as the default one, as MakeAppx does.
	type typesNS struct {
		XMLName   xml.Name `xml:"Types"`
		NS        string   `xml:"xmlns,attr"`
		Defaults  []xmlDefault
		Overrides []xmlOverride
	}
	if err := enc.Encode(typesNS{NS: ContentTypesNS, Defaults: x.Defaults, Overrides: x.Overrides}); err != nil {
		// Encoding plain strings into a bytes.Buffer cannot fail.
		panic(err)
	}
	buf.WriteString("\n")
	return buf.Bytes()
}
