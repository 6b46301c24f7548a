package serverdb

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in   string
		want [4]int64
		ok   bool
	}{
		{"1.2.0.0", [4]int64{1, 2, 0, 0}, true},
		{"0.0.0.0", [4]int64{}, true},
		{"65535.65535.65535.65535", [4]int64{65535, 65535, 65535, 65535}, true},
		{"01.002.0003.00004", [4]int64{1, 2, 3, 4}, true},
		{"1.2.3", [4]int64{}, false},
		{"1.2.3.4.5", [4]int64{}, false},
		{"1.2.3.65536", [4]int64{}, false},
		{"1.2.3.000001", [4]int64{}, false},
		{"1..3.4", [4]int64{}, false},
		{"1.2.3.-4", [4]int64{}, false},
		{"1.2.3.+4", [4]int64{}, false},
		{" 1.2.3.4", [4]int64{}, false},
		{"1.2.3.4 ", [4]int64{}, false},
		{"a.b.c.d", [4]int64{}, false},
		{"", [4]int64{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseVersion(tc.in)
			switch {
			case !tc.ok && !errors.Is(err, ErrInvalid):
				t.Errorf("error %v, want ErrInvalid", err)
			case tc.ok && err != nil:
				t.Error(err)
			case tc.ok && got != tc.want:
				t.Errorf("= %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzParseVersion: versions come from manifests and the management API.
// Whatever parses prints back to an equal version, numerically.
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.2.0.0", "65535.0.0.1", "1.2.3", "0001.2.3.4", "1..2.3", "-1.0.0.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseVersion(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		parts := strings.Split(s, ".")
		for i, n := range v {
			if n < 0 || n > 65535 || strings.TrimLeft(parts[i], "0") != strings.TrimLeft(strconv.FormatInt(n, 10), "0") {
				t.Fatalf("%q parsed to %v", s, v)
			}
		}
	})
}
