package publishing

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// ContentType is the Content-Type of a publishing document (MS-VAPR 2.2.2.1).
const ContentType = "text/xml"

// ServeDocument answers a GET or HEAD request for a publishing document with
// body (from Marshal) and its etag (from ETag; computed when empty):
// 304 Not Modified when the request's If-None-Match names the tag, else
// 200 OK with the document. It sets Content-Type: text/xml and
// Cache-Control: no-cache, as MS-VAPR requires; no-cache lets caches keep
// the document but makes them ask again each time, and since the tag is a
// hash of the bytes, a 304 can only ever confirm the very document a cache
// holds, whoever asks. Other methods get 405. Authentication and choosing
// the document are the caller's business.
func ServeDocument(w http.ResponseWriter, r *http.Request, body []byte, etag string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "publishing: only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	if etag == "" {
		etag = ETag(body)
	}
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	if inm := r.Header.Values("If-None-Match"); len(inm) > 0 && noneMatchHas(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body) // the client has gone; nothing to do
	}
}

// noneMatchHas reports whether If-None-Match header values name etag, with
// RFC 9110's weak comparison ("W/" is ignored), or are "*".
func noneMatchHas(values []string, etag string) bool {
	want := strings.TrimPrefix(etag, "W/")
	for _, v := range values {
		for v != "" {
			v = strings.TrimLeft(v, " \t,")
			if v == "" {
				break
			}
			if v[0] == '*' {
				return true
			}
			v = strings.TrimPrefix(v, "W/")
			if v == "" || v[0] != '"' {
				break // malformed: ignore the rest of this value
			}
			end := strings.IndexByte(v[1:], '"')
			if end < 0 {
				break
			}
			if v[:end+2] == want {
				return true
			}
			v = v[end+2:]
		}
	}
	return false
}

// ParseClientVersion reads the ClientVersion query parameter of a publishing
// request ("5.1.120.0": four numbers from 0 to 65535) into the 64-bit value
// MS-VAPR compares package requirements with, the first number in the top 16
// bits.
func ParseClientVersion(s string) (uint64, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return 0, fmt.Errorf("publishing: ClientVersion %q is not four numbers separated by dots", s)
	}
	var v uint64
	for _, p := range parts {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("publishing: ClientVersion %q: %q is not a number from 0 to 65535", s, p)
		}
		v = v<<16 | n
	}
	return v, nil
}
