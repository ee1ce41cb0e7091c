package hub

import "testing"

func TestParseAdmission(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Admission
		ok   bool
	}{
		{"open", Open, true},
		{"allow-list", AllowList, true},
		{"provisioned", Provisioned, true},
		{"home", Home, true},
		{"", 0, false},
		{"Open", 0, false},
		{"allowlist", 0, false},
		{"sometimes", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseAdmission(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("ParseAdmission(%q) = %v, %v", tc.in, got, err)
			}
			if tc.ok && got.String() != tc.in {
				t.Fatalf("%v prints as %q, want %q", got, got.String(), tc.in)
			}
		})
	}
	if s := Admission(9).String(); s != "Admission(9)" {
		t.Fatalf("an unknown mode prints as %q", s)
	}
}
