package appvpkg

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"unicode/utf16"

	"github.com/beevik/etree"
)

// Limits on the XML parts of a package. A package is untrusted input: these
// bound the memory and time a reader spends on it.
const (
	// MaxXMLPartSize is the largest XML part (uncompressed) this package parses.
	// The block map of a 10 GiB package is about 15 MiB, so 64 MiB leaves room.
	MaxXMLPartSize = 64 << 20
	// MaxXMLDepth is the deepest element nesting accepted in an XML part.
	MaxXMLDepth = 64
	// maxXMLAttrs bounds attributes on one element.
	maxXMLAttrs = 256
)

// nsXMLURI is the namespace the "xml" prefix is bound to by definition.
const nsXMLURI = "http://www.w3.org/XML/1998/namespace"

// normalizeXML returns data as UTF-8: a UTF-16 document (with its byte-order
// mark, as some of Microsoft's tools write block maps) is converted and its
// encoding declaration rewritten; a UTF-8 BOM is dropped.
func normalizeXML(part string, data []byte) ([]byte, error) {
	if len(data) >= 2 && ((data[0] == 0xFF && data[1] == 0xFE) || (data[0] == 0xFE && data[1] == 0xFF)) {
		if len(data)%2 != 0 {
			return nil, formatErr(part, nil, "UTF-16 document has an odd number of bytes")
		}
		be := data[0] == 0xFE
		u := make([]uint16, 0, len(data)/2-1)
		for i := 2; i+1 < len(data); i += 2 {
			if be {
				u = append(u, uint16(data[i])<<8|uint16(data[i+1]))
			} else {
				u = append(u, uint16(data[i+1])<<8|uint16(data[i]))
			}
		}
		data = []byte(string(utf16.Decode(u)))
		// The declaration still says UTF-16; the bytes are now UTF-8.
		if bytes.HasPrefix(data, []byte("<?xml")) {
			if end := bytes.Index(data, []byte("?>")); end > 0 {
				decl := utf16Decl.ReplaceAll(data[:end], []byte(`encoding="UTF-8"`))
				data = append(decl, data[end:]...)
			}
		}
		return data, nil
	}
	return bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF")), nil
}

var utf16Decl = regexp.MustCompile(`(?i)encoding\s*=\s*["']utf-16(le|be)?["']`)

// checkXML enforces the size and depth limits on an XML part and rejects
// DOCTYPE declarations (App-V documents have none; they are the usual carrier
// of entity expansion attacks). part names the document in errors. It
// returns the document as UTF-8 (see normalizeXML); parsers use that.
func checkXML(part string, data []byte) ([]byte, error) {
	if len(data) > MaxXMLPartSize {
		return nil, formatErr(part, nil, "XML part is %d bytes, more than the limit of %d", len(data), MaxXMLPartSize)
	}
	data, err := normalizeXML(part, data)
	if err != nil {
		return nil, err
	}
	if err := checkXMLShape(part, data); err != nil {
		return nil, err
	}
	return data, nil
}

// checkXMLShape makes one pass over the tokens: nesting depth, attribute
// count, DOCTYPE, end tags without start tags, and namespace prefixes that
// no xmlns declaration binds (well-formed XML that is not
// namespace-well-formed, as in the corpus's Bad_Namespace_Blockmap.appx).
func checkXMLShape(part string, data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	// Namespace scopes: prefix -> URI, innermost last.
	scopes := []map[string]string{{"xml": nsXMLURI, "xmlns": "xmlns"}}
	lookup := func(prefix string) (string, bool) {
		for i := len(scopes) - 1; i >= 0; i-- {
			if uri, ok := scopes[i][prefix]; ok {
				return uri, true
			}
		}
		return "", false
	}
	sawRoot := false
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return formatErr(part, err, "not well-formed XML")
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth := len(scopes) - 1
			if depth == 0 && sawRoot {
				return formatErr(part, nil, "more than one root element")
			}
			sawRoot = true
			if depth+1 > MaxXMLDepth {
				return formatErr(part, nil, "XML nested deeper than %d elements", MaxXMLDepth)
			}
			if len(t.Attr) > maxXMLAttrs {
				return formatErr(part, nil, "element <%s> has more than %d attributes", t.Name.Local, maxXMLAttrs)
			}
			var scope map[string]string
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					if scope == nil {
						scope = map[string]string{}
					}
					prefix := a.Name.Local
					if a.Name.Space == "" {
						prefix = "" // the default namespace
					}
					scope[prefix] = a.Value
				}
			}
			scopes = append(scopes, scope)
			if _, ok := lookup(t.Name.Space); t.Name.Space != "" && !ok {
				return formatErr(part, nil, "unbound namespace prefix %q on element <%s:%s>", t.Name.Space, t.Name.Space, t.Name.Local)
			}
			// No two attributes with the same expanded name (XML forbids
			// it; encoding/xml does not check, and a tree would keep one).
			seen := make(map[[2]string]bool, len(t.Attr))
			for _, a := range t.Attr {
				uri := ""
				switch {
				case a.Name.Space == "xmlns", a.Name.Space == "" && a.Name.Local == "xmlns":
					uri = "xmlns"
				case a.Name.Space != "":
					var ok bool
					if uri, ok = lookup(a.Name.Space); !ok {
						return formatErr(part, nil, "unbound namespace prefix %q on attribute %s:%s", a.Name.Space, a.Name.Space, a.Name.Local)
					}
				}
				k := [2]string{uri, a.Name.Local}
				if seen[k] {
					return formatErr(part, nil, "element <%s> has attribute %s twice", t.Name.Local, a.Name.Local)
				}
				seen[k] = true
			}
		case xml.EndElement:
			if len(scopes) == 1 {
				return formatErr(part, nil, "end tag </%s> without a start tag", t.Name.Local)
			}
			scopes = scopes[:len(scopes)-1]
		case xml.Directive:
			if bytes.HasPrefix(bytes.TrimSpace(t), []byte("DOCTYPE")) {
				return formatErr(part, nil, "DOCTYPE declarations are not allowed")
			}
		}
	}
	if !sawRoot {
		return formatErr(part, nil, "no root element")
	}
	if len(scopes) != 1 {
		return formatErr(part, nil, "unclosed element")
	}
	return nil
}

// ParseXML parses an untrusted XML document (part names it in errors) with
// the limits this package applies to its own parts: at most
// MaxXMLPartSize bytes, UTF-8 or UTF-16 with a byte-order mark, well-formed,
// one root, no DOCTYPE, at most MaxXMLDepth levels, every prefix bound, no
// attribute twice. Errors are *FormatError. Other packages that read App-V
// XML (dynamic configuration, publishing documents) use it.
func ParseXML(part string, data []byte) (*etree.Document, error) { return parseXMLTree(part, data) }

// parseXMLTree checks the limits, then parses data into an etree document
// that keeps prefixes, order and unknown content, so a part survives a round
// trip. Unbound namespace prefixes are rejected.
func parseXMLTree(part string, data []byte) (*etree.Document, error) {
	data, err := checkXML(part, data)
	if err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	doc.ReadSettings.Permissive = false
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, formatErr(part, err, "not well-formed XML")
	}
	if doc.Root() == nil {
		return nil, formatErr(part, nil, "no root element")
	}
	return doc, nil
}

// nsURI returns the namespace URI an element is in, resolving its prefix.
func nsURI(e *etree.Element) string { return e.NamespaceURI() }

// attrNS returns the value of the attribute with the given namespace URI (""
// for unqualified) and local name, and whether it is present.
func attrNS(e *etree.Element, uri, local string) (string, bool) {
	for i := range e.Attr {
		a := &e.Attr[i]
		if a.Key != local {
			continue
		}
		if uri == "" {
			if a.Space == "" {
				return a.Value, true
			}
			continue
		}
		if a.Space != "" && a.NamespaceURI() == uri {
			return a.Value, true
		}
	}
	return "", false
}

// childrenNS returns the child elements of e with the given namespace URI and
// local name.
func childrenNS(e *etree.Element, uri, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range e.ChildElements() {
		if c.Tag == local && nsURI(c) == uri {
			out = append(out, c)
		}
	}
	return out
}
