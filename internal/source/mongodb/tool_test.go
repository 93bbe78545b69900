package mongodb

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDumpArgs(t *testing.T) {
	ex, _ := ParsePattern("shop.cache")
	wild, _ := ParsePattern("shop.c*")
	for _, tc := range []struct {
		sel   Selector
		oplog bool
		want  string
		err   bool
	}{
		{Selector{}, true, "--archive --oplog --numParallelCollections=2", false},
		{Selector{Databases: []string{"shop"}, Exclude: []*Pattern{ex}}, false, "--archive --db=shop --excludeCollection=cache --numParallelCollections=2", false},
		{Selector{Collections: []string{"shop.orders"}}, false, "--archive --db=shop --collection=orders --numParallelCollections=2", false},
		{Selector{Databases: []string{"a", "b"}}, false, "", true},
		{Selector{Databases: []string{"shop"}}, true, "", true},
		{Selector{Databases: []string{"shop"}, Exclude: []*Pattern{wild}}, false, "", true},
		{Selector{Exclude: []*Pattern{ex}}, false, "", true},
	} {
		args, err := dumpArgs(&tc.sel, 2, tc.oplog)
		if tc.err {
			if err == nil {
				t.Errorf("%+v: accepted (%q)", tc.sel, args)
			}
			continue
		}
		if err != nil || strings.Join(args, " ") != tc.want {
			t.Errorf("%+v: %q %v, want %q", tc.sel, args, err, tc.want)
		}
	}
}

func TestToolConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{URI: `mongodb://u:we"ird%20pw@h/?tlsCertificateKeyFilePassword=kp`}
	p, remove, err := writeToolConfig(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file %v: %v", fi.Mode(), err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "password: \"we\\\"ird pw\"\nsslPEMKeyPassword: \"kp\"\n" {
		t.Fatalf("config file:\n%s", b)
	}
	args := connArgs(cfg, p)
	if slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "ird") || strings.Contains(a, "kp") }) {
		t.Fatalf("secrets on the command line: %q", args)
	}
	remove()
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("config file left behind")
	}
	if p, _, err := writeToolConfig(dir, Config{URI: "mongodb://h/"}); err != nil || p != "" {
		t.Fatalf("no secrets: %q %v", p, err)
	}
}

func TestLookPathAndPatterns(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "mongodump")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := LookPath("mongodump", "", "/nonexistent:"+dir); err != nil || p != exe {
		t.Fatalf("LookPath on PATH: %q %v", p, err)
	}
	if p, err := LookPath("mongodump", dir, ""); err != nil || p != exe {
		t.Fatalf("LookPath in dir: %q %v", p, err)
	}
	if _, err := LookPath("mongorestore", "", dir); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("missing tool: %v", err)
	}
	for in, want := range map[string]string{"shop": "shop.*", "shop.*": "shop.*", `a\.b`: `a\.b.*`, "*": "*.*"} {
		if got := mongoPattern(in); got != want {
			t.Errorf("mongoPattern(%q) = %q, want %q", in, got, want)
		}
	}
}
