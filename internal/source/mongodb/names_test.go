package mongodb

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFileName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"orders", "orders"},
		{"x.y/z", "x.y%2Fz"},
		{"a b", "a%20b"},
		{"sys$tem", "sys$tem"},
		{".", "%2E"},
		{"..", "%2E%2E"},
		{"ü", "%C3%BC"},
	} {
		if got := FileName(tc.in); got != tc.want {
			t.Errorf("FileName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("é", 200) // 1200 bytes escaped
	got := FileName(long)
	if len(got) != 238 || !strings.Contains(got, "%24") {
		t.Errorf("long name: %d bytes %q", len(got), got)
	}
	if FileName(long+"x") == got {
		t.Error("long names differing at the end map to the same file")
	}
}

func TestPattern(t *testing.T) {
	for _, tc := range []struct {
		pat   string
		ns    string
		match bool
	}{
		{"shop.*", "shop.orders", true},
		{"shop.*", "shop.a.b", true},
		{"shop.*", "shopping.orders", false},
		{"shop", "shop.orders", true}, // a bare database
		{"shop", "shop2.orders", false},
		{"*.orders", "a.orders", true},
		{"*.orders", "a.orders2", false},
		{"a.b", "a.b", true},
		{"a.b", "a.bc", false},
		{`a.b\*`, "a.b*", true},
		{`a.b\*`, "a.bc", false},
		{"a.*x*", "a.yxz", true},
		{"*", "a.b", true},
		{"a.(", "a.(", true},
	} {
		p, err := ParsePattern(tc.pat)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", tc.pat, err)
		}
		if got := p.Match(tc.ns); got != tc.match {
			t.Errorf("%q matching %q = %v, want %v", tc.pat, tc.ns, got, tc.match)
		}
	}
	for _, bad := range []string{"", `a.b\`} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("ParsePattern(%q) accepted", bad)
		}
	}
}

func TestRename(t *testing.T) {
	for _, tc := range []struct{ from, to, ns, want string }{
		{"shop.*", "shop_copy.*", "shop.orders", "shop_copy.orders"},
		{"shop", "shop_copy", "shop.orders", "shop_copy.orders"},
		{"*.orders", "*.orders_old", "a.orders", "a.orders_old"},
		{"a.*-*", "b.*_*", "a.x-y", "b.x_y"},
		{"a.b", "c.d", "a.b", "c.d"},
		{"shop.*", "shop_copy.*", "other.orders", ""},
	} {
		r, err := ParseRename(tc.from, tc.to)
		if err != nil {
			t.Fatalf("ParseRename(%q, %q): %v", tc.from, tc.to, err)
		}
		got, ok := r.Apply(tc.ns)
		if !ok {
			got = ""
		}
		if got != tc.want {
			t.Errorf("%s on %q = %q, want %q", r, tc.ns, got, tc.want)
		}
	}
	if _, err := ParseRename("a.*", "b.c"); err == nil {
		t.Error("a rename with unequal wildcards was accepted")
	}
}

func TestSelector(t *testing.T) {
	ex, _ := ParsePattern("shop.cache*")
	s := Selector{Databases: []string{"shop"}, Collections: []string{"crm.people"}, Exclude: []*Pattern{ex}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		db, coll string
		want     bool
	}{
		{"shop", "orders", true},
		{"shop", "cache1", false},
		{"crm", "people", true},
		{"crm", "other", false},
		{"admin", "x", false},
	} {
		if got := s.Wants(tc.db, tc.coll); got != tc.want {
			t.Errorf("Wants(%s.%s) = %v", tc.db, tc.coll, got)
		}
	}
	if !s.WantsDB("crm") || s.WantsDB("admin") {
		t.Error("WantsDB")
	}
	if err := (&Selector{Collections: []string{"nodot"}}).Validate(); err == nil {
		t.Error("a collection without a database was accepted")
	}
	if err := (&Selector{Databases: []string{"a/b"}}).Validate(); err == nil {
		t.Error("an invalid database name was accepted")
	}
}

// FuzzFileName: every name maps to a valid tree name of at most 238 bytes
// (mongodump's bound), and distinct short names to distinct files.
func FuzzFileName(f *testing.F) {
	for _, s := range []string{"a", ".", "..", "x/y", strings.Repeat("z", 300), "%", "a\x00b"} {
		f.Add(s, s+"1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if a == "" {
			return
		}
		fa := FileName(a)
		if fa == "" || fa == "." || fa == ".." || strings.ContainsAny(fa, "/\x00") {
			t.Fatalf("FileName(%q) = %q is not a valid file name", a, fa)
		}
		if len(fa) > maxEscapedName+len("%24")+27 {
			t.Fatalf("FileName(%q) is %d bytes", a, len(fa))
		}
		if b != "" && a != b && len(fa) < maxEscapedName && FileName(b) == fa {
			t.Fatalf("%q and %q map to the same file %q", a, b, fa)
		}
	})
}

// FuzzPattern: parsing never panics; a pattern without wildcards or
// escapes matches exactly itself; a rename from a pattern to itself is the
// identity on what it matches.
func FuzzPattern(f *testing.F) {
	for _, s := range []string{"shop.*", "shop", `a.b\*`, "*.*", "a.(x)+", `\\`, "*", "a.b"} {
		f.Add(s, "shop.orders")
	}
	f.Fuzz(func(t *testing.T, pat, ns string) {
		p, err := ParsePattern(pat)
		if err != nil {
			return
		}
		m := p.Match(ns)
		if utf8.ValidString(pat) && strings.Contains(pat, ".") && !strings.ContainsAny(pat, `*\`) && m != (ns == pat) {
			t.Fatalf("%q matching %q = %v", pat, ns, m)
		}
		r, err := ParseRename(pat, pat)
		if err != nil {
			t.Fatalf("rename %q to itself: %v", pat, err)
		}
		got, ok := r.Apply(ns)
		if ok != m || (ok && got != ns && utf8.ValidString(ns)) {
			t.Fatalf("rename %q to itself maps %q to %q (%v)", pat, ns, got, ok)
		}
	})
}
