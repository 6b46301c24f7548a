package dynconfig

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"unicode/utf16"

	"github.com/beevik/etree"

	"github.com/appv/appv/internal/appvpkg"
)

// maxAttrs bounds the attributes of one element, as appvpkg does.
const maxAttrs = 256

// nsXML is the namespace the "xml" prefix is bound to by definition.
const nsXML = "http://www.w3.org/XML/1998/namespace"

// parseLimited checks a file against the limits and parses it into a tree:
// at most appvpkg.MaxXMLPartSize bytes, UTF-8 (a byte-order mark is dropped)
// or UTF-16 with a byte-order mark, well-formed, one root element, no
// DOCTYPE, at most appvpkg.MaxXMLDepth levels and maxAttrs attributes on an
// element, every prefix bound and no attribute twice.
func parseLimited(part string, data []byte) (*etree.Document, error) {
	if len(data) > appvpkg.MaxXMLPartSize {
		return nil, formatErr(part, nil, "%d bytes, more than the limit of %d", len(data), appvpkg.MaxXMLPartSize)
	}
	data, err := toUTF8(part, data)
	if err != nil {
		return nil, err
	}
	if err := checkShape(part, data); err != nil {
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

var utf16Decl = regexp.MustCompile(`(?i)encoding\s*=\s*["']utf-16(le|be)?["']`)

// toUTF8 returns data as UTF-8: a UTF-16 document (with its byte-order mark,
// as Windows tools may write these files) is converted and its declaration
// rewritten; a UTF-8 byte-order mark is dropped.
func toUTF8(part string, data []byte) ([]byte, error) {
	if len(data) < 2 || !(data[0] == 0xFF && data[1] == 0xFE || data[0] == 0xFE && data[1] == 0xFF) {
		return bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF")), nil
	}
	if len(data)%2 != 0 {
		return nil, formatErr(part, nil, "UTF-16 document with an odd number of bytes")
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
	out := []byte(string(utf16.Decode(u)))
	if bytes.HasPrefix(out, []byte("<?xml")) {
		if end := bytes.Index(out, []byte("?>")); end > 0 {
			decl := utf16Decl.ReplaceAll(out[:end], []byte(`encoding="UTF-8"`))
			out = append(decl, out[end:]...)
		}
	}
	return out, nil
}

// checkShape makes one pass over the tokens before a tree is built.
func checkShape(part string, data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	scopes := []map[string]string{{"xml": nsXML}}
	lookup := func(prefix string) bool {
		for i := len(scopes) - 1; i >= 0; i-- {
			if _, ok := scopes[i][prefix]; ok {
				return true
			}
		}
		return false
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
			if depth+1 > appvpkg.MaxXMLDepth {
				return formatErr(part, nil, "nested deeper than %d elements", appvpkg.MaxXMLDepth)
			}
			if len(t.Attr) > maxAttrs {
				return formatErr(part, nil, "element <%s> has more than %d attributes", t.Name.Local, maxAttrs)
			}
			scope := map[string]string{}
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "xmlns":
					scope[a.Name.Local] = a.Value
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					scope[""] = a.Value
				}
			}
			scopes = append(scopes, scope)
			if t.Name.Space != "" && !lookup(t.Name.Space) {
				return formatErr(part, nil, "unbound namespace prefix %q on <%s:%s>", t.Name.Space, t.Name.Space, t.Name.Local)
			}
			seen := make(map[xml.Name]bool, len(t.Attr))
			for _, a := range t.Attr {
				if a.Name.Space != "" && a.Name.Space != "xmlns" && !lookup(a.Name.Space) {
					return formatErr(part, nil, "unbound namespace prefix %q on attribute %s:%s", a.Name.Space, a.Name.Space, a.Name.Local)
				}
				if seen[a.Name] {
					return formatErr(part, nil, "element <%s> has attribute %s twice", t.Name.Local, a.Name.Local)
				}
				seen[a.Name] = true
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
