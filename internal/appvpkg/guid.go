package appvpkg

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"
)

// NewGUID returns a random (version 4) GUID in App-V's lower-case form, as
// used for appv:PackageId and appv:VersionId.
func NewGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ParseGUID checks s is a GUID (with or without braces) and returns it in
// lower case without braces.
func ParseGUID(s string) (string, error) {
	t := strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	if !guidRE.MatchString(t) {
		return "", fmt.Errorf("appvpkg: %q is not a GUID (want xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", s)
	}
	return strings.ToLower(t), nil
}
