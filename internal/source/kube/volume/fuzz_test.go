package volume

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzParseHook: any input gives a valid hook or an error, never a panic,
// and a parsed hook's command survives a round trip through JSON form.
func FuzzParseHook(f *testing.F) {
	for _, s := range []string{
		"app/db=sync", "app/db-0:mysql=mysql -e 'FLUSH TABLES'", `ns/p=sh -c "echo \"hi\"" a\ b ''`,
		`ns/p=["/bin/sh","-c","x"]`, "ns/p", "ns/p:=x", "ns/p=[1]", "ns/p=\\", "ns/p='", `ns/p="`, "a/b=c\\\nd",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHook(s)
		if err != nil {
			return
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("ParseHook(%q) returned an invalid hook: %v", s, err)
		}
		words, err := splitWords(shellQuote(h.Command))
		if err != nil || strings.Join(words, "\x00") != strings.Join(h.Command, "\x00") || len(words) != len(h.Command) {
			t.Fatalf("%q: quoted %q splits to %q, %v", s, h.Command, words, err)
		}
	})
}

// shellQuote quotes words for splitWords.
func shellQuote(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// FuzzHooksFromAnnotations: annotation values from any pod give valid
// hooks or an error.
func FuzzHooksFromAnnotations(f *testing.F) {
	f.Add("sync", "", "", "", `["a","b"]`, "app", "30s", "Continue")
	f.Add("", "x", "10", "ignore", "'", "Bad_Name", "-1s", "FAIL")
	f.Fuzz(func(t *testing.T, cmd, container, timeout, onErr, postCmd, postContainer, postTimeout, postOnErr string) {
		ann := map[string]string{}
		set := func(phase, field, v string) {
			if v != "" {
				ann[HookAnnotation(phase, field)] = v
			}
		}
		set(PhasePre, "command", cmd)
		set(PhasePre, "container", container)
		set(PhasePre, "timeout", timeout)
		set(PhasePre, "on-error", onErr)
		set(PhasePost, "command", postCmd)
		set(PhasePost, "container", postContainer)
		set(PhasePost, "timeout", postTimeout)
		set(PhasePost, "on-error", postOnErr)
		hs, err := HooksFromAnnotations("ns", "pod", ann)
		if err != nil {
			return
		}
		for _, h := range hs {
			if err := h.Validate(); err != nil || h.Timeout < 0 {
				t.Fatalf("invalid hook %+v from %v: %v", h, ann, err)
			}
		}
	})
}

// FuzzExecStream: whatever an API server sends on an exec stream is
// read without a panic or an outsized allocation, and ends in a result.
func FuzzExecStream(f *testing.F) {
	frame := func(fin bool, op byte, p string) string {
		b := op
		if fin {
			b |= 0x80
		}
		return string([]byte{b, byte(len(p))}) + p
	}
	f.Add(frame(true, 2, "\x01hello") + frame(true, 2, "\x03{\"status\":\"Success\"}") + frame(true, 8, "\x03\xe8"))
	f.Add(frame(false, 2, "\x01he") + frame(true, 9, "ping") + frame(true, 0, "llo") + frame(true, 8, ""))
	f.Add(frame(true, 2, `{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}`))
	f.Add("\x82\x7f\x00\x00\x01\x00\x00\x00\x00\x00")
	f.Add("\x82\x7e\x00\x05\x01abcd")
	f.Fuzz(func(t *testing.T, stream string) {
		c := &wsConn{r: bufio.NewReader(strings.NewReader(stream)), w: io.Discard}
		var status []byte
		total := 0
		for {
			msg, err := c.readMessage()
			if err != nil {
				break
			}
			total += len(msg)
			if total > len(stream) {
				t.Fatalf("read %d bytes of messages from a %d-byte stream", total, len(stream))
			}
			if len(msg) > 0 && msg[0] == chanError {
				status = append(status, msg[1:]...)
			}
		}
		err := execStatus(status)
		var ee *ExitError
		if errors.As(err, &ee) && !bytes.Contains(status, []byte("NonZeroExitCode")) {
			t.Fatalf("an exit code from %q", status)
		}
	})
}
