package tree

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendNode appends the canonical encoding of n: exactly what
// encoding/json's Encoder with SetEscapeHTML(false) writes for it, without
// the trailing newline. Backups encode every node of every changed
// directory, and reflection made that a tenth of a small-file backup's
// CPU time; this writes the common node directly and hands anything
// unusual (a name needing escapes, a time outside what RFC 3339 can hold)
// to encoding/json, so the bytes never differ. FuzzAppendNode holds the
// two to the same output.
func appendNode(dst []byte, n *Node) ([]byte, error) {
	if n != nil {
		if out, ok := appendNodeFast(dst, n); ok {
			return out, nil
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(n); err != nil {
		return dst, err
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), nil
}

// appendNodeFast encodes n, or reports false (leaving dst's content
// unspecified beyond its original length) when n needs the general path.
func appendNodeFast(dst []byte, n *Node) ([]byte, bool) {
	start := len(dst)
	fail := func() ([]byte, bool) { return dst[:start], false }
	var ok bool
	dst = append(dst, `{"name":`...)
	if dst, ok = appendPlainString(dst, string(n.Name)); !ok {
		return fail()
	}
	dst = append(dst, `,"type":`...)
	if dst, ok = appendPlainString(dst, string(n.Type)); !ok {
		return fail()
	}
	dst = append(dst, `,"mode":`...)
	dst = strconv.AppendUint(dst, uint64(n.Mode), 10)
	dst = append(dst, `,"mtime":`...)
	if dst, ok = appendTime(dst, n.ModTime); !ok {
		return fail()
	}
	if !n.AccessTime.IsZero() {
		dst = append(dst, `,"atime":`...)
		if dst, ok = appendTime(dst, n.AccessTime); !ok {
			return fail()
		}
	}
	if !n.ChangeTime.IsZero() {
		dst = append(dst, `,"ctime":`...)
		if dst, ok = appendTime(dst, n.ChangeTime); !ok {
			return fail()
		}
	}
	dst = append(dst, `,"uid":`...)
	dst = strconv.AppendUint(dst, uint64(n.UID), 10)
	dst = append(dst, `,"gid":`...)
	dst = strconv.AppendUint(dst, uint64(n.GID), 10)
	if n.User != "" {
		dst = append(dst, `,"user":`...)
		if dst, ok = appendPlainString(dst, n.User); !ok {
			return fail()
		}
	}
	if n.Group != "" {
		dst = append(dst, `,"group":`...)
		if dst, ok = appendPlainString(dst, n.Group); !ok {
			return fail()
		}
	}
	dst = appendUintField(dst, `,"inode":`, n.Inode)
	dst = appendUintField(dst, `,"device_id":`, n.DeviceID)
	dst = appendUintField(dst, `,"links":`, n.Links)
	dst = appendUintField(dst, `,"size":`, n.Size)
	if len(n.Content) > 0 {
		dst = append(dst, `,"content":[`...)
		for i := range n.Content {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendID(dst, &n.Content[i])
		}
		dst = append(dst, ']')
	}
	if n.Subtree != nil {
		dst = append(dst, `,"subtree":`...)
		dst = appendID(dst, n.Subtree)
	}
	if n.LinkTarget != "" {
		dst = append(dst, `,"linktarget":`...)
		if dst, ok = appendPlainString(dst, string(n.LinkTarget)); !ok {
			return fail()
		}
	}
	dst = appendUintField(dst, `,"device":`, n.Device)
	if len(n.Xattrs) > 0 {
		dst = append(dst, `,"xattrs":[`...)
		for i, x := range n.Xattrs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"name":`...)
			if dst, ok = appendPlainString(dst, string(x.Name)); !ok {
				return fail()
			}
			dst = append(dst, `,"value":`...)
			if x.Value == nil {
				dst = append(dst, "null"...)
			} else {
				dst = append(dst, '"')
				dst = base64.StdEncoding.AppendEncode(dst, x.Value)
				dst = append(dst, '"')
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if n.Error != "" {
		dst = append(dst, `,"error":`...)
		if dst, ok = appendPlainString(dst, n.Error); !ok {
			return fail()
		}
	}
	return append(dst, '}'), true
}

func appendUintField(dst []byte, key string, v uint64) []byte {
	if v == 0 {
		return dst
	}
	return strconv.AppendUint(append(dst, key...), v, 10)
}

func appendID(dst []byte, id *ID) []byte {
	const digits = "0123456789abcdef"
	dst = append(dst, '"')
	for _, b := range id {
		dst = append(dst, digits[b>>4], digits[b&15])
	}
	return append(dst, '"')
}

// appendPlainString quotes s when no byte of it needs an escape under
// either of encoding/json's escaping modes (for a RawString that is what
// its MarshalJSON writes; a name that is not UTF-8 takes the general path): printable ASCII other than
// '"', '\\', '<', '>' and '&', and valid UTF-8 other than U+2028 and
// U+2029. Otherwise it reports false.
func appendPlainString(dst []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b < 0x20 || b == '"' || b == '\\' || b == '<' || b == '>' || b == '&' {
				return dst, false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return dst, false
		}
		i += size
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), true
}

// appendTime writes t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds), for the years and zone offsets it accepts.
func appendTime(dst []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return dst, false
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return dst, false
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), true
}
