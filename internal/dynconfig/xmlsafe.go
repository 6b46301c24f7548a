package dynconfig

import (
	"errors"

	"github.com/beevik/etree"

	"github.com/appv/appv/internal/appvpkg"
)

// maxAttrs bounds the attributes of one element, as appvpkg does.
const maxAttrs = 256

// nsXML is the namespace the "xml" prefix is bound to by definition.
const nsXML = "http://www.w3.org/XML/1998/namespace"

// parseLimited checks a file against appvpkg's limits for untrusted XML
// (appvpkg.ParseXML: size, encoding, depth, DOCTYPE, namespaces, duplicate
// attributes) and parses it into a tree; a failure is this package's
// *FormatError naming the file and the rule.
func parseLimited(part string, data []byte) (*etree.Document, error) {
	doc, err := appvpkg.ParseXML(part, data)
	if err != nil {
		var fe *appvpkg.FormatError
		if errors.As(err, &fe) {
			return nil, formatErr(part, fe.Err, "%s", fe.Rule)
		}
		return nil, formatErr(part, err, "not well-formed XML")
	}
	return doc, nil
}
