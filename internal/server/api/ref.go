package api

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/appv/appv/internal/appvpkg"
)

// MaxNameLength bounds identity names, in bytes.
const MaxNameLength = 256

// IdentityRef names an identity in a route: "user:NAME", "group:NAME",
// "machine:NAME", or "#ID".
type IdentityRef struct {
	Kind string // KindUser, KindGroup or KindMachine; "" when ID is set
	Name string
	ID   int64 // > 0 for "#ID"
}

// String writes r as ParseIdentityRef reads it.
func (r IdentityRef) String() string {
	if r.ID != 0 {
		return "#" + strconv.FormatInt(r.ID, 10)
	}
	return r.Kind + ":" + r.Name
}

// ParseIdentityRef reads an identity reference: "user:NAME", "group:NAME",
// "machine:NAME" (NAME as CheckName accepts it), or "#ID" (a positive
// decimal ID).
func ParseIdentityRef(s string) (IdentityRef, error) {
	if id, ok := strings.CutPrefix(s, "#"); ok {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n <= 0 || id[0] == '+' {
			return IdentityRef{}, fmt.Errorf("identity %q: after # comes a positive number, the identity's ID", s)
		}
		return IdentityRef{ID: n}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	if !ok {
		return IdentityRef{}, fmt.Errorf("identity %q: write user:NAME, group:NAME, machine:NAME or #ID", s)
	}
	if err := CheckKind(kind); err != nil {
		return IdentityRef{}, fmt.Errorf("identity %q: %w", s, err)
	}
	if err := CheckName(name); err != nil {
		return IdentityRef{}, fmt.Errorf("identity %q: %w", s, err)
	}
	return IdentityRef{Kind: kind, Name: name}, nil
}

// CheckKind checks an identity kind.
func CheckKind(kind string) error {
	switch kind {
	case KindUser, KindGroup, KindMachine:
		return nil
	}
	return fmt.Errorf("kind %q is not user, group or machine", kind)
}

// CheckName checks an identity name: 1 to MaxNameLength bytes of UTF-8,
// without control characters, and not starting with "#".
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("the name is empty")
	case len(name) > MaxNameLength:
		return fmt.Errorf("the name is longer than %d bytes", MaxNameLength)
	case !utf8.ValidString(name):
		return errors.New("the name is not valid UTF-8")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return errors.New("the name holds a control character")
	}
	return nil
}

// OptionalSuffix marks an optional member in a member spec.
const OptionalSuffix = "?optional"

// ParseMemberSpec reads a connection group member as `appv admin
// connection-group put --member` takes it: PACKAGE, PACKAGE@VERSIONID or
// PACKAGE@any, each optionally followed by "?optional". PACKAGE is a
// PackageId or a package name; without @, the member takes any version.
// A VersionId is returned in App-V's lower-case form.
func ParseMemberSpec(s string) (MemberSpec, error) {
	var m MemberSpec
	rest, optional := strings.CutSuffix(s, OptionalSuffix)
	m.Optional = optional
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		v := rest[i+1:]
		switch g, err := appvpkg.ParseGUID(v); {
		case v == AnyVersion:
			m.Version = AnyVersion
		case err == nil:
			m.Version = g
		default:
			return MemberSpec{}, fmt.Errorf("member %q: after @ comes a VersionId or %q, not %q", s, AnyVersion, v)
		}
		rest = rest[:i]
	}
	if strings.TrimSpace(rest) == "" {
		return MemberSpec{}, fmt.Errorf("member %q: no package: write PACKAGE[@VERSIONID|@any][?optional]", s)
	}
	m.Package = rest
	return m, nil
}
