package redact

import (
	"bytes"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	r := New("hunter22", "hunter2234", "", "ab", "p@ss word/x")
	for in, want := range map[string]string{
		"pw=hunter22 and hunter2234.":       "pw=[redacted] and [redacted].",
		"ab stays, hunter2 stays":           "ab stays, hunter2 stays",
		"url user:p%40ss+word%2Fx@host":     "url user:[redacted]@host",
		"path /p@ss%20word%2Fx/":            "path /[redacted]/",
		"plain p@ss word/x in a log line\n": "plain [redacted] in a log line\n",
	} {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
	var nilR *Redactor
	if nilR.String("x") != "x" || New().String("hunter22") != "hunter22" {
		t.Error("an empty redactor changed text")
	}
}

// TestWriterSplitSecret: a secret written a byte at a time is masked.
func TestWriterSplitSecret(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, New("s3cret-token"))
	for _, b := range []byte("token: s3cret-token\nagain s3cret-tok") {
		if _, err := w.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Write([]byte("en")); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "token: [redacted]\nagain [redacted]" {
		t.Errorf("got %q", got)
	}
	if strings.Contains(out.String(), "s3cret") {
		t.Error("leaked")
	}
}
