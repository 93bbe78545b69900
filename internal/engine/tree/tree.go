package tree

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/bunkerbackup/bunker/internal/engine/format"
)

// ID is a 32-byte blob identifier (keyed BLAKE3-256 of the plaintext).
type ID = format.ID

// RawString is a string of arbitrary bytes. In JSON it is a plain string when
// it is valid UTF-8 and {"b64":"..."} otherwise, so non-UTF-8 file names
// survive a round trip exactly.
type RawString string

// MarshalJSON implements json.Marshaler.
func (s RawString) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(s)) {
		return json.Marshal(string(s))
	}
	return json.Marshal(struct {
		B64 string `json:"b64"`
	}{base64.StdEncoding.EncodeToString([]byte(s))})
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *RawString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '{' {
		var v struct {
			B64 string `json:"b64"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		raw, err := base64.StdEncoding.DecodeString(v.B64)
		if err != nil {
			return fmt.Errorf("raw string: %w", err)
		}
		*s = RawString(raw)
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return err
	}
	*s = RawString(str)
	return nil
}

// NodeType is the kind of a directory entry.
type NodeType string

// The node types.
const (
	TypeFile    NodeType = "file"
	TypeDir     NodeType = "dir"
	TypeSymlink NodeType = "symlink"
	TypeFIFO    NodeType = "fifo"
	TypeDev     NodeType = "dev"     // block device
	TypeCharDev NodeType = "chardev" // character device
	TypeSocket  NodeType = "socket"
)

// Xattr is one extended attribute.
type Xattr struct {
	Name  RawString `json:"name"`
	Value []byte    `json:"value"`
}

// Node is one directory entry with its metadata.
//
// Mode holds the Go fs.FileMode bits (type bits, permission bits and
// ModeSetuid/ModeSetgid/ModeSticky), as os.Lstat reports them.
type Node struct {
	Name       RawString `json:"name"`
	Type       NodeType  `json:"type"`
	Mode       uint32    `json:"mode"`
	ModTime    time.Time `json:"mtime"`
	AccessTime time.Time `json:"atime,omitzero"`
	ChangeTime time.Time `json:"ctime,omitzero"`
	UID        uint32    `json:"uid"`
	GID        uint32    `json:"gid"`
	User       string    `json:"user,omitempty"`
	Group      string    `json:"group,omitempty"`
	Inode      uint64    `json:"inode,omitempty"`
	DeviceID   uint64    `json:"device_id,omitempty"` // st_dev of the filesystem holding it
	Links      uint64    `json:"links,omitempty"`
	Size       uint64    `json:"size,omitempty"`
	Content    []ID      `json:"content,omitempty"` // data blobs of a file, in order
	Subtree    *ID       `json:"subtree,omitempty"` // tree blob of a directory
	LinkTarget RawString `json:"linktarget,omitempty"`
	Device     uint64    `json:"device,omitempty"` // st_rdev of a device node
	Xattrs     []Xattr   `json:"xattrs,omitempty"`
	Error      string    `json:"error,omitempty"` // set when the entry could not be read fully
}

// Tree is the sorted list of entries of one directory. A large directory
// is stored split (see Save): its tree blob then has no nodes and lists in
// Chunks the tree blobs that hold runs of its nodes, in order.
type Tree struct {
	Nodes  []*Node `json:"nodes"`
	Chunks []ID    `json:"chunks,omitempty"`
}

// Insert adds a node, keeping the tree sorted. Duplicate names are an error.
func (t *Tree) Insert(n *Node) error {
	i := sort.Search(len(t.Nodes), func(i int) bool { return t.Nodes[i].Name >= n.Name })
	if i < len(t.Nodes) && t.Nodes[i].Name == n.Name {
		return fmt.Errorf("duplicate name %q in tree", string(n.Name))
	}
	t.Nodes = append(t.Nodes, nil)
	copy(t.Nodes[i+1:], t.Nodes[i:])
	t.Nodes[i] = n
	return nil
}

// Find returns the node with the given name, or nil.
func (t *Tree) Find(name string) *Node {
	i := sort.Search(len(t.Nodes), func(i int) bool { return string(t.Nodes[i].Name) >= name })
	if i < len(t.Nodes) && string(t.Nodes[i].Name) == name {
		return t.Nodes[i]
	}
	return nil
}

// Sort orders the nodes by name.
func (t *Tree) Sort() {
	sort.Slice(t.Nodes, func(i, j int) bool { return t.Nodes[i].Name < t.Nodes[j].Name })
}

// Encode returns the canonical serialisation of the tree: compact JSON with
// a trailing newline, nodes sorted by name.
func (t *Tree) Encode() ([]byte, error) {
	if err := t.checkSorted(); err != nil {
		return nil, err
	}
	if t.Nodes == nil {
		t.Nodes = []*Node{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(t); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (t *Tree) checkSorted() error {
	for i := 1; i < len(t.Nodes); i++ {
		if t.Nodes[i-1].Name >= t.Nodes[i].Name {
			return fmt.Errorf("tree not sorted or has duplicate name %q", string(t.Nodes[i].Name))
		}
	}
	return nil
}

// Decode parses a tree blob and checks it is well formed: sorted unique
// names, valid names (no "/", not "." or ".."), known types.
func Decode(b []byte) (*Tree, error) {
	t, ok := decodeCanonical(b)
	if !ok {
		t = &Tree{}
		if err := json.Unmarshal(b, t); err != nil {
			return nil, fmt.Errorf("decode tree: %w", err)
		}
	}
	if len(t.Chunks) > 0 && len(t.Nodes) > 0 {
		return nil, errors.New("decode tree: a split tree (with chunks) must not hold nodes itself")
	}
	for i, n := range t.Nodes {
		if n == nil {
			return nil, fmt.Errorf("decode tree: node %d is null", i)
		}
		if err := ValidName(string(n.Name)); err != nil {
			return nil, fmt.Errorf("decode tree: node %d: %w", i, err)
		}
		if i > 0 && t.Nodes[i-1].Name >= n.Name {
			return nil, fmt.Errorf("decode tree: node %d (%q) out of order or duplicate", i, string(n.Name))
		}
		switch n.Type {
		case TypeDir:
			if n.Subtree == nil {
				return nil, fmt.Errorf("decode tree: directory %q has no subtree", string(n.Name))
			}
		case TypeFile, TypeSymlink, TypeFIFO, TypeDev, TypeCharDev, TypeSocket:
		default:
			return nil, fmt.Errorf("decode tree: node %q has unknown type %q", string(n.Name), n.Type)
		}
	}
	return t, nil
}

// ValidName reports whether a node name is safe to join to a path.
func ValidName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("invalid node name %q", name)
	}
	if bytes.IndexByte([]byte(name), '/') >= 0 || bytes.IndexByte([]byte(name), 0) >= 0 {
		return errors.New("invalid node name: contains '/' or NUL")
	}
	return nil
}
