package publishing

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// Limits on a publishing document, which a client reads from the network.
const (
	// MaxDocumentSize is the largest document Parse accepts. A document that
	// entitles 10,000 packages, each with a configuration, in 1,000 groups is
	// about 5 MB.
	MaxDocumentSize = 64 << 20
	// MaxDepth is the deepest element nesting Parse accepts (the document
	// itself is four deep; unknown extensions get the rest).
	MaxDepth = 32
	// maxAttrs bounds the attributes of one element.
	maxAttrs = 256
)

// nsXML is the namespace the "xml" prefix is bound to by definition.
const nsXML = "http://www.w3.org/XML/1998/namespace"

// token is a start or end tag, its name resolved to a namespace URI.
type token struct {
	start bool       // a start tag; otherwise an end tag
	name  xml.Name   // Space is the namespace URI, "" for none
	attrs []xml.Attr // the attributes in no namespace, xmlns declarations left out
	line  int
}

// attr returns the value of the attribute named local, and whether there is one.
func (t *token) attr(local string) (string, bool) {
	for _, a := range t.attrs {
		if a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

// reader returns the tags of a document one by one after checking, as
// internal/appvpkg does for package parts: no DOCTYPE (nor any other
// declaration), at most MaxDepth levels and maxAttrs attributes on an
// element, every namespace prefix bound, no attribute twice, start and end
// tags that match, one root element and no text outside it.
type reader struct {
	d      *xml.Decoder
	scopes []map[string]string // namespace declarations of each open element (nil for none), predefined ones first
	open   []xml.Name          // the open elements as written, innermost last
	roots  int
}

// newReader returns a reader of data: UTF-8 (a byte-order mark is dropped) or
// UTF-16 with a byte-order mark.
func newReader(data []byte) (*reader, error) {
	data, utf16, err := toUTF8(data)
	if err != nil {
		return nil, err
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
		// The bytes are UTF-8 now, whatever the declaration says.
		if utf16 && strings.HasPrefix(strings.ToLower(label), "utf-16") {
			return in, nil
		}
		return nil, fmt.Errorf("encoding %q is not supported (write UTF-8)", label)
	}
	return &reader{d: d, scopes: []map[string]string{{"": "", "xml": nsXML, "xmlns": "xmlns"}}}, nil
}

// toUTF8 converts a UTF-16 document with a byte-order mark to UTF-8 and
// drops a UTF-8 byte-order mark; it says whether data was UTF-16.
func toUTF8(data []byte) ([]byte, bool, error) {
	if len(data) < 2 || !(data[0] == 0xFF && data[1] == 0xFE || data[0] == 0xFE && data[1] == 0xFF) {
		return bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF")), false, nil
	}
	if len(data)%2 != 0 {
		return nil, false, &FormatError{Rule: "UTF-16 document with an odd number of bytes"}
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
	return []byte(string(utf16.Decode(u))), true, nil
}

// lookup returns the namespace URI prefix is bound to.
func (r *reader) lookup(prefix string) (string, bool) {
	for i := len(r.scopes) - 1; i >= 0; i-- {
		if uri, ok := r.scopes[i][prefix]; ok {
			return uri, true
		}
	}
	return "", false
}

// line is the line the decoder has reached.
func (r *reader) line() int {
	l, _ := r.d.InputPos()
	return l
}

// next returns the next start or end tag; io.EOF after the root element's
// end and the end of the document.
func (r *reader) next() (token, error) {
	for {
		tok, err := r.d.RawToken()
		if errors.Is(err, io.EOF) {
			switch {
			case r.roots == 0:
				return token{}, &FormatError{Line: r.line(), Rule: "no root element"}
			case len(r.open) > 0:
				return token{}, &FormatError{Line: r.line(), Element: r.open[len(r.open)-1].Local, Rule: "element not closed"}
			}
			return token{}, io.EOF
		}
		if err != nil {
			line := r.line()
			if se, ok := errors.AsType[*xml.SyntaxError](err); ok {
				line = se.Line
			}
			return token{}, &FormatError{Line: line, Rule: "not well-formed XML", Err: err}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return r.start(t)
		case xml.EndElement:
			if len(r.open) == 0 || r.open[len(r.open)-1] != t.Name {
				return token{}, &FormatError{Line: r.line(), Element: t.Name.Local, Rule: "end tag does not match the start tag"}
			}
			uri := ""
			if t.Name.Space != "" {
				uri, _ = r.lookup(t.Name.Space)
			} else {
				uri, _ = r.lookup("")
			}
			r.open = r.open[:len(r.open)-1]
			r.scopes = r.scopes[:len(r.scopes)-1]
			return token{name: xml.Name{Space: uri, Local: t.Name.Local}, line: r.line()}, nil
		case xml.CharData:
			if len(r.open) == 0 && len(bytes.TrimSpace(t)) > 0 {
				return token{}, &FormatError{Line: r.line(), Rule: "text outside the root element"}
			}
		case xml.Directive:
			return token{}, &FormatError{Line: r.line(), Rule: "DOCTYPE and other declarations are not allowed"}
		}
	}
}

// start checks a start tag and opens its scope.
func (r *reader) start(t xml.StartElement) (token, error) {
	line := r.line()
	if len(r.open) == 0 {
		if r.roots++; r.roots > 1 {
			return token{}, &FormatError{Line: line, Element: t.Name.Local, Rule: "more than one root element"}
		}
	}
	if len(r.open)+1 > MaxDepth {
		return token{}, &FormatError{Line: line, Element: t.Name.Local, Rule: fmt.Sprintf("elements nested deeper than %d", MaxDepth)}
	}
	if len(t.Attr) > maxAttrs {
		return token{}, &FormatError{Line: line, Element: t.Name.Local, Rule: fmt.Sprintf("more than %d attributes", maxAttrs)}
	}
	var scope map[string]string
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
			if scope == nil {
				scope = map[string]string{}
			}
			if a.Name.Space == "" {
				scope[""] = a.Value
			} else {
				scope[a.Name.Local] = a.Value
			}
		}
	}
	r.scopes = append(r.scopes, scope)
	r.open = append(r.open, t.Name)
	uri, ok := r.lookup(t.Name.Space)
	if !ok {
		return token{}, &FormatError{Line: line, Element: t.Name.Local, Rule: fmt.Sprintf("namespace prefix %q is not declared", t.Name.Space)}
	}
	tok := token{start: true, name: xml.Name{Space: uri, Local: t.Name.Local}, line: line}
	// No two attributes with the same expanded name: XML forbids it and
	// encoding/xml does not check.
	seen := make(map[xml.Name]bool, len(t.Attr))
	for _, a := range t.Attr {
		var key xml.Name
		switch {
		case a.Name.Space == "xmlns", a.Name.Space == "" && a.Name.Local == "xmlns":
			key = xml.Name{Space: "xmlns", Local: a.Name.Local}
		case a.Name.Space != "":
			uri, ok := r.lookup(a.Name.Space)
			if !ok {
				return token{}, &FormatError{Line: line, Element: t.Name.Local, Rule: fmt.Sprintf("namespace prefix %q of attribute %s is not declared", a.Name.Space, a.Name.Local)}
			}
			key = xml.Name{Space: uri, Local: a.Name.Local}
		default:
			key = a.Name
			tok.attrs = append(tok.attrs, a)
		}
		if seen[key] {
			return token{}, &FormatError{Line: line, Element: t.Name.Local, Rule: fmt.Sprintf("attribute %s given twice", a.Name.Local)}
		}
		seen[key] = true
	}
	return tok, nil
}

// skip reads up to the end of the element whose start tag was just read.
func (r *reader) skip() error {
	for depth := 1; depth > 0; {
		tok, err := r.next()
		if err != nil {
			return err
		}
		if tok.start {
			depth++
		} else {
			depth--
		}
	}
	return nil
}
