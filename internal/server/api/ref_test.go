package api

import (
	"strings"
	"testing"
)

func TestParseIdentityRef(t *testing.T) {
	tests := []struct {
		in   string
		want IdentityRef
		bad  bool
	}{
		{in: "user:alice", want: IdentityRef{Kind: KindUser, Name: "alice"}},
		{in: "group:Domain Users", want: IdentityRef{Kind: KindGroup, Name: "Domain Users"}},
		{in: "machine:pc:1", want: IdentityRef{Kind: KindMachine, Name: "pc:1"}},
		{in: "user:ünï/cødé", want: IdentityRef{Kind: KindUser, Name: "ünï/cødé"}},
		{in: "#42", want: IdentityRef{ID: 42}},
		{in: "alice", bad: true},
		{in: "robot:r2", bad: true},
		{in: "user:", bad: true},
		{in: "User:alice", bad: true},
		{in: "user:a\x00b", bad: true},
		{in: "user:\xff", bad: true},
		{in: "user:" + strings.Repeat("x", MaxNameLength+1), bad: true},
		{in: "#0", bad: true},
		{in: "#-1", bad: true},
		{in: "#+1", bad: true},
		{in: "#x", bad: true},
		{in: "#", bad: true},
		{in: "", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseIdentityRef(tc.in)
			switch {
			case tc.bad && err == nil:
				t.Fatalf("accepted as %+v", got)
			case tc.bad && !strings.Contains(err.Error(), "identity"):
				t.Errorf("message %q does not say what is wrong", err)
			case !tc.bad && err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Errorf("got %+v, want %+v", got, tc.want)
			case !tc.bad && got.String() != tc.in:
				t.Errorf("String %q", got.String())
			}
		})
	}
}

func TestParseMemberSpec(t *testing.T) {
	const v = "8a1f2b3c-4d5e-4f60-8172-93a4b5c6d7e8"
	tests := []struct {
		in   string
		want MemberSpec
		bad  bool
	}{
		{in: "Editor", want: MemberSpec{Package: "Editor"}},
		{in: "Editor@any", want: MemberSpec{Package: "Editor", Version: AnyVersion}},
		{in: "Editor@" + v, want: MemberSpec{Package: "Editor", Version: v}},
		{in: "Editor@{" + strings.ToUpper(v) + "}", want: MemberSpec{Package: "Editor", Version: v}},
		{in: "Editor?optional", want: MemberSpec{Package: "Editor", Optional: true}},
		{in: "Editor@any?optional", want: MemberSpec{Package: "Editor", Version: AnyVersion, Optional: true}},
		{in: "a@b@any", want: MemberSpec{Package: "a@b", Version: AnyVersion}},
		{in: "Editor@latest", bad: true},
		{in: "Editor@", bad: true},
		{in: "@any", bad: true},
		{in: "?optional", bad: true},
		{in: "", bad: true},
		{in: " @any", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMemberSpec(tc.in)
			switch {
			case tc.bad && err == nil:
				t.Fatalf("accepted as %+v", got)
			case tc.bad && !strings.Contains(err.Error(), "member"):
				t.Errorf("message %q does not say what is wrong", err)
			case !tc.bad && err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzParseIdentityRef checks that ParseIdentityRef never panics, that what
// it accepts is well formed, and that String gives it back.
func FuzzParseIdentityRef(f *testing.F) {
	for _, s := range []string{"user:alice", "group:g", "machine:m:1", "#1", "#9223372036854775807", "#-0", "x", "user:\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseIdentityRef(s)
		if err != nil {
			return
		}
		if r.ID < 0 || (r.ID == 0 && (CheckKind(r.Kind) != nil || CheckName(r.Name) != nil)) {
			t.Fatalf("%q accepted as %+v", s, r)
		}
		again, err := ParseIdentityRef(r.String())
		if err != nil || again != r {
			t.Fatalf("%q: %+v written %q reads back as %+v, %v", s, r, r.String(), again, err)
		}
	})
}

// FuzzParseMemberSpec checks that ParseMemberSpec never panics and that
// String gives back what it read.
func FuzzParseMemberSpec(f *testing.F) {
	for _, s := range []string{"Editor", "Editor@any?optional", "a@b@8a1f2b3c-4d5e-4f60-8172-93a4b5c6d7e8", "x?optional?optional", "@", "?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMemberSpec(s)
		if err != nil {
			return
		}
		if strings.TrimSpace(m.Package) == "" {
			t.Fatalf("%q accepted without a package: %+v", s, m)
		}
		again, err := ParseMemberSpec(m.String())
		if err != nil || again != m {
			t.Fatalf("%q: %+v written %q reads back as %+v, %v", s, m, m.String(), again, err)
		}
	})
}
