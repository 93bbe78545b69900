package tree

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf8"
)

// decodeCanonical parses b when it is laid out exactly as Save and Encode
// write trees (keys in struct order, no whitespace, strings without
// escapes, no xattrs) and returns the tree encoding/json would decode
// from it. For anything else it reports false and Decode falls back to
// encoding/json, which then accepts or rejects the input as before: this
// is only a faster route for the common case, never a second grammar.
// Restores, listings and incremental backups decode every tree they visit,
// and reflection made that the larger part of their tree-loading time.
// FuzzDecode checks that whatever it accepts, encoding/json decodes to the
// same tree.
func decodeCanonical(b []byte) (*Tree, bool) {
	d := canonDecoder{b: b}
	if !d.lit(`{"nodes":[`) {
		return nil, false
	}
	t := &Tree{Nodes: []*Node{}}
	ok := d.elems(func() bool {
		n, ok := d.node()
		t.Nodes = append(t.Nodes, n)
		return ok
	})
	if !ok {
		return nil, false
	}
	if d.lit(`,"chunks":[`) {
		if t.Chunks, ok = d.ids(); !ok {
			return nil, false
		}
	}
	if !d.lit("}") {
		return nil, false
	}
	d.lit("\n")
	return t, d.i == len(d.b)
}

type canonDecoder struct {
	b      []byte
	i      int
	intern map[string]string // user and group names repeat across nodes
}

// lit consumes s if the input continues with it.
func (d *canonDecoder) lit(s string) bool {
	if len(d.b)-d.i >= len(s) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}

// elems parses the elements of a JSON array whose '[' was consumed, up to
// and including its ']', calling item for each; item reports whether the
// element parsed.
func (d *canonDecoder) elems(item func() bool) bool {
	if d.lit("]") {
		return true
	}
	for item() {
		if d.lit("]") {
			return true
		}
		if !d.lit(",") {
			return false
		}
	}
	return false
}

// ids parses an array of IDs whose '[' was consumed; an empty array gives
// an empty, non-nil slice, as encoding/json does.
func (d *canonDecoder) ids() ([]ID, bool) {
	out := []ID{}
	ok := d.elems(func() bool {
		id, ok := d.id()
		out = append(out, id)
		return ok
	})
	return out, ok
}

// str returns the content of a JSON string with no escapes, no control
// characters and valid UTF-8: exactly the bytes encoding/json would
// decode it to.
func (d *canonDecoder) str() ([]byte, bool) {
	if !d.lit(`"`) {
		return nil, false
	}
	start := d.i
	end := bytes.IndexByte(d.b[start:], '"')
	if end < 0 {
		return nil, false
	}
	s := d.b[start : start+end]
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return nil, false
		}
	}
	if !utf8.Valid(s) {
		return nil, false
	}
	d.i = start + end + 1
	return s, true
}

func (d *canonDecoder) name() (string, bool) {
	s, ok := d.str()
	if !ok {
		return "", false
	}
	if d.intern == nil {
		d.intern = map[string]string{}
	}
	if v, ok := d.intern[string(s)]; ok {
		return v, true
	}
	v := string(s)
	if len(d.intern) < 64 {
		d.intern[v] = v
	}
	return v, true
}

// uint parses a JSON number that is a plain decimal integer fitting in
// bits.
func (d *canonDecoder) uint(bits int) (uint64, bool) {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	digits := d.b[start:d.i]
	if len(digits) == 0 || len(digits) > 1 && digits[0] == '0' {
		return 0, false
	}
	v, err := strconv.ParseUint(string(digits), 10, bits)
	return v, err == nil
}

func (d *canonDecoder) time() (time.Time, bool) {
	start := d.i
	if _, ok := d.str(); !ok {
		return time.Time{}, false
	}
	var t time.Time
	err := t.UnmarshalJSON(d.b[start:d.i])
	return t, err == nil
}

func (d *canonDecoder) id() (ID, bool) {
	s, ok := d.str()
	var id ID
	if !ok || id.UnmarshalText(s) != nil {
		return id, false
	}
	return id, true
}

func (d *canonDecoder) node() (*Node, bool) {
	n := &Node{}
	var ok bool
	var s []byte
	var v uint64
	if !d.lit(`{"name":`) {
		return nil, false
	}
	if s, ok = d.str(); !ok {
		return nil, false
	}
	n.Name = RawString(s)
	if !d.lit(`,"type":`) {
		return nil, false
	}
	if s, ok = d.str(); !ok {
		return nil, false
	}
	switch string(s) { // the constants, not a new string per node
	case string(TypeFile):
		n.Type = TypeFile
	case string(TypeDir):
		n.Type = TypeDir
	case string(TypeSymlink):
		n.Type = TypeSymlink
	default:
		n.Type = NodeType(s)
	}
	if !d.lit(`,"mode":`) {
		return nil, false
	}
	if v, ok = d.uint(32); !ok {
		return nil, false
	}
	n.Mode = uint32(v)
	if !d.lit(`,"mtime":`) {
		return nil, false
	}
	if n.ModTime, ok = d.time(); !ok {
		return nil, false
	}
	if d.lit(`,"atime":`) {
		if n.AccessTime, ok = d.time(); !ok {
			return nil, false
		}
	}
	if d.lit(`,"ctime":`) {
		if n.ChangeTime, ok = d.time(); !ok {
			return nil, false
		}
	}
	if !d.lit(`,"uid":`) {
		return nil, false
	}
	if v, ok = d.uint(32); !ok {
		return nil, false
	}
	n.UID = uint32(v)
	if !d.lit(`,"gid":`) {
		return nil, false
	}
	if v, ok = d.uint(32); !ok {
		return nil, false
	}
	n.GID = uint32(v)
	if d.lit(`,"user":`) {
		if n.User, ok = d.name(); !ok {
			return nil, false
		}
	}
	if d.lit(`,"group":`) {
		if n.Group, ok = d.name(); !ok {
			return nil, false
		}
	}
	for _, f := range []struct {
		key string
		dst *uint64
	}{{`,"inode":`, &n.Inode}, {`,"device_id":`, &n.DeviceID}, {`,"links":`, &n.Links}, {`,"size":`, &n.Size}} {
		if d.lit(f.key) {
			if *f.dst, ok = d.uint(64); !ok {
				return nil, false
			}
		}
	}
	if d.lit(`,"content":[`) {
		if n.Content, ok = d.ids(); !ok {
			return nil, false
		}
	}
	if d.lit(`,"subtree":`) {
		id, ok := d.id()
		if !ok {
			return nil, false
		}
		n.Subtree = &id
	}
	if d.lit(`,"linktarget":`) {
		if s, ok = d.str(); !ok {
			return nil, false
		}
		n.LinkTarget = RawString(s)
	}
	if d.lit(`,"device":`) {
		if n.Device, ok = d.uint(64); !ok {
			return nil, false
		}
	}
	if d.lit(`,"error":`) {
		if s, ok = d.str(); !ok {
			return nil, false
		}
		n.Error = string(s)
	}
	return n, d.lit("}")
}
