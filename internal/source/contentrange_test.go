package source

import (
	"net/http"
	"testing"
	"time"
)

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in      string
		want    contentRange
		wantErr bool
	}{
		{in: "bytes 0-0/1", want: contentRange{0, 0, 1}},
		{in: "bytes 0-99/1000", want: contentRange{0, 99, 1000}},
		{in: " bytes 10-19/* ", want: contentRange{10, 19, -1}},
		{in: "bytes */0", want: contentRange{-1, -1, 0}},
		{in: "bytes */1234", want: contentRange{-1, -1, 1234}},
		{in: "bytes 9223372036854775806-9223372036854775806/9223372036854775807",
			want: contentRange{1<<63 - 2, 1<<63 - 2, 1<<63 - 1}},

		{in: "", wantErr: true},
		{in: "bytes", wantErr: true},
		{in: "bytes 0-99", wantErr: true},
		{in: "items 0-99/100", wantErr: true},
		{in: "bytes=0-99/100", wantErr: true},
		{in: "bytes 99-0/100", wantErr: true},
		{in: "bytes 0-100/100", wantErr: true},
		{in: "bytes -1-5/100", wantErr: true},
		{in: "bytes +1-5/100", wantErr: true},
		{in: "bytes 1 -5/100", wantErr: true},
		{in: "bytes 0x1-5/100", wantErr: true},
		{in: "bytes 1_0-20/100", wantErr: true},
		{in: "bytes 0-5/-100", wantErr: true},
		{in: "bytes */*", wantErr: true},
		{in: "bytes 0-9223372036854775808/*", wantErr: true},
		{in: "bytes 0-99999999999999999999/*", wantErr: true},
		{in: "bytes 0-5/100/7", wantErr: true},
		{in: "bytes 0-5-6/100", wantErr: true},
		{in: "bytes -/100", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseContentRange(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseContentRange(%q) = %+v, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseContentRange(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("parseContentRange(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzParseContentRange checks that whatever the parser accepts is a
// well-formed range that formats back to something it reads the same way.
// Seeds: f.Add below and testdata/fuzz/FuzzParseContentRange.
func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{
		"bytes 0-0/1", "bytes 0-99/1000", "bytes 10-19/*", "bytes */0",
		"bytes 0-9223372036854775806/9223372036854775807", "bytes 1-0/5", "bytes 0-5",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cr, err := parseContentRange(s)
		if err != nil {
			return
		}
		switch {
		case cr.First < 0:
			if cr.First != -1 || cr.Last != -1 || cr.Size < 0 {
				t.Fatalf("%q: unsatisfied range %+v", s, cr)
			}
		case cr.First > cr.Last:
			t.Fatalf("%q: first after last: %+v", s, cr)
		case cr.Size >= 0 && cr.Last >= cr.Size:
			t.Fatalf("%q: last beyond size: %+v", s, cr)
		case cr.Size < -1:
			t.Fatalf("%q: size %d", s, cr.Size)
		}
		again, err := parseContentRange(cr.String())
		if err != nil || again != cr {
			t.Fatalf("%q: parsed as %+v, formatted as %q, parsed again as %+v, %v", s, cr, cr.String(), again, err)
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"3", 3 * time.Second},
		{"99999999", time.Hour},
		{"-1", 0},
		{"soon", 0},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second},
		{now.Add(-7 * time.Second).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
