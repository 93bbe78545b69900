package volume

import (
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
