package source

import (
	"errors"
	"fmt"
	"strings"
)

// contentRange is a parsed Content-Range header (RFC 9110, section 14.4).
type contentRange struct {
	First, Last int64 // the range's first and last byte; both -1 for "bytes */N"
	Size        int64 // the complete length, -1 for "*"
}

// String formats cr the way parseContentRange reads it.
func (cr contentRange) String() string {
	size := "*"
	if cr.Size >= 0 {
		size = fmt.Sprint(cr.Size)
	}
	if cr.First < 0 {
		return "bytes */" + size
	}
	return fmt.Sprintf("bytes %d-%d/%s", cr.First, cr.Last, size)
}

// parseContentRange parses "bytes FIRST-LAST/SIZE", "bytes FIRST-LAST/*" or
// "bytes */SIZE" strictly: decimal digits only, FIRST <= LAST < SIZE.
func parseContentRange(s string) (contentRange, error) {
	bad := func(why string) (contentRange, error) {
		return contentRange{}, fmt.Errorf("bad Content-Range %q: %s", s, why)
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !ok {
		return bad("not in bytes")
	}
	rng, size, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("no complete length")
	}
	cr := contentRange{First: -1, Last: -1, Size: -1}
	if size != "*" {
		n, err := parseDigits(size)
		if err != nil {
			return bad("complete length: " + err.Error())
		}
		cr.Size = n
	}
	if rng == "*" {
		if cr.Size < 0 {
			return bad("neither range nor length")
		}
		return cr, nil
	}
	first, last, ok := strings.Cut(rng, "-")
	if !ok {
		return bad("range has no '-'")
	}
	var err error
	if cr.First, err = parseDigits(first); err != nil {
		return bad("first byte: " + err.Error())
	}
	if cr.Last, err = parseDigits(last); err != nil {
		return bad("last byte: " + err.Error())
	}
	if cr.First > cr.Last {
		return bad("first byte after last")
	}
	if cr.Size >= 0 && cr.Last >= cr.Size {
		return bad("last byte beyond the complete length")
	}
	return cr, nil
}

var errNotNumber = errors.New("not a decimal number")

// parseDigits parses a non-negative decimal that fits in an int64; unlike
// strconv it takes no sign, no spaces and no underscores.
func parseDigits(s string) (int64, error) {
	if s == "" || len(s) > 19 {
		return 0, errNotNumber
	}
	var n int64
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, errNotNumber
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, errNotNumber
		}
		n = n*10 + d
	}
	return n, nil
}
