package objstore

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

func TestCleanText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"", 100, ""},
		{"plain message", 100, "plain message"},
		{"  two\r\nlines \t tabbed  ", 100, "two lines tabbed"},
		{"esc \x1b[2J and \x00 nul", 100, "esc [2J and nul"},
		{"bidi \u202etxt.exe\u202c zero\u200bwidth", 100, "bidi txt.exe zerowidth"},
		{"bad \xff\xfe utf8", 100, "bad ? utf8"},
		{"a b", 2, "a…"},
		{"ünïcödé stays", 100, "ünïcödé stays"},
		{strings.Repeat("a", 20), 10, strings.Repeat("a", 10) + "…"},
		{strings.Repeat("é", 10), 11, strings.Repeat("é", 5) + "…"},
		{"exactly ten", 11, "exactly ten"},
	} {
		if got := CleanText(tc.in, tc.max); got != tc.want {
			t.Errorf("CleanText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestIsCode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"NoSuchKey", true},
		{"notFound", true},
		{"x-amz.Error_2", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"2fast", false},
		{"-dash", false},
		{"two words", false},
		{"Access\nDenied", false},
		{"Ünicode", false},
	} {
		if got := IsCode(tc.in); got != tc.want {
			t.Errorf("IsCode(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// readResponse is net/http's error about reply, if any.
func readResponse(reply string) error {
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(reply)), nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return err
}

func TestIsNotHTTP(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"banner", readResponse("SSH-2.0-OpenSSH_9.2\r\n"), true},
		{"bad status", readResponse("HTTP/1.1 x OK\r\n\r\n"), true},
		{"bad header", readResponse("HTTP/1.1 500 Internal Server Error\r\nnot a header\r\n\r\n"), true},
		{"bad length", readResponse("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"), true},
		{"bad encoding", readResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: x\r\n\r\n"), true},
		{"wrapped", fmt.Errorf("get: %w", readResponse("SSH-2.0-OpenSSH_9.2\r\n")), true},
		{"refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), false},
		{"eof", io.ErrUnexpectedEOF, false},
	} {
		if tc.err == nil {
			t.Fatalf("%s: net/http took the reply", tc.name)
		}
		if got := IsNotHTTP(tc.err); got != tc.want {
			t.Errorf("%s: IsNotHTTP(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	var v struct {
		N int `json:",string" xml:"N"`
	}
	_, numErr := strconv.Atoi("x")
	_, timeErr := time.Parse(time.RFC1123, "x")
	for _, tc := range []struct {
		name              string
		err               error
		xml, json, values bool
	}{
		{"xml syntax", xml.Unmarshal([]byte("<a>"), &v), true, false, false},
		{"xml element", xml.Unmarshal([]byte("<a></a>"), &struct {
			XMLName xml.Name `xml:"b"`
		}{}), true, false, false},
		{"json syntax", json.Unmarshal([]byte("{"), &v), false, true, false},
		{"json type", json.Unmarshal([]byte(`{"N":[]}`), &v), false, true, false},
		{"json ,string", json.Unmarshal([]byte(`{"N":1}`), &v), false, true, false},
		{"number", fmt.Errorf("parse: %w", numErr), false, false, true},
		{"time", fmt.Errorf("parse: %w", timeErr), false, false, true},
		{"other", io.ErrUnexpectedEOF, false, false, false},
	} {
		if tc.err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		if got := IsXMLError(tc.err); got != tc.xml {
			t.Errorf("%s: IsXMLError(%v) = %v, want %v", tc.name, tc.err, got, tc.xml)
		}
		if got := IsJSONError(tc.err); got != tc.json {
			t.Errorf("%s: IsJSONError(%v) = %v, want %v", tc.name, tc.err, got, tc.json)
		}
		if got := IsValueError(tc.err); got != tc.values {
			t.Errorf("%s: IsValueError(%v) = %v, want %v", tc.name, tc.err, got, tc.values)
		}
	}
}

func TestReplyReader(t *testing.T) {
	r := &ReplyReader{R: strings.NewReader("data")}
	if b, err := io.ReadAll(r); string(b) != "data" || err != nil || r.Err != nil {
		t.Errorf("read of a whole reply = %q, %v; Err = %v, want nil", b, err, r.Err)
	}
	broken := errors.New("connection reset")
	r = &ReplyReader{R: io.MultiReader(strings.NewReader("da"), iotest.ErrReader(broken))}
	if _, err := io.ReadAll(r); !errors.Is(err, broken) || !errors.Is(r.Err, broken) {
		t.Errorf("read of a broken reply = %v; Err = %v, want %v", err, r.Err, broken)
	}
}
